"""The HTTP API through FastAPI's test client: answers equal the model's own, bad input -> 4xx JSON."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi", reason="rnnkit serve needs the serve extra: pip install -e '.[serve]'")

import warnings

import rnnkit.numpy_engine

with warnings.catch_warnings():  # starlette's note about httpx's successor
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from rnnkit.config import ModelConfig
from rnnkit.data.vocab import tokenize
from rnnkit.errors import ConfigError
from rnnkit.params import parameter_shapes
from rnnkit.serve.app import create_app
from rnnkit.serve.batcher import Batcher, QueueFull
from rnnkit.serve.limits import ServeLimits, check_host
from rnnkit.tasks import load_predictor

# the numpy engine is the serving default; until it lands, the same tests run on torch
ENGINE = "numpy" if hasattr(rnnkit.numpy_engine, "build_model") else "torch"
LIMITS = ServeLimits(max_body_bytes=200_000, max_texts=8, max_text_chars=2_000, explain_max_words=30)
POSITIVE = "The plot was wonderful and the cast was great, a funny and charming film."
NEGATIVE = "Not good. The ending was a boring mess, the worst acting."


@pytest.fixture(scope="module")
def model(demo_bundle):
    return load_predictor(demo_bundle[0], engine=ENGINE)


@pytest.fixture(scope="module")
def client(model):
    with TestClient(create_app(model, LIMITS, engine=ENGINE)) as test_client:
        yield test_client


def post(client, path, body, content_type="application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=data, headers={"Content-Type": content_type})


def assert_error(response, status, *fragments):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["status"] == status and error["message"]
    for fragment in fragments:
        assert fragment in error["message"], error["message"]


# --------------------------------------------------------------------------- answers


def test_healthz_and_model_description(client, model):
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/v1/model").json()
    assert info["task"] == "sentiment" and info["engine"] == ENGINE
    assert info["config"] == model.bundle.config.to_dict() and info["settings"]["maxlen"] == 80
    assert info["limits"]["max_texts"] == 8 and info["endpoints"] == ["/v1/predict", "/v1/explain"]
    assert "val_accuracy" in info["metrics"] and "/" not in info["bundle"]  # no server paths leak


def test_predict_one_text_equals_the_model(client, model):
    answer = post(client, "/v1/predict", {"text": POSITIVE}).json()["prediction"]
    expected = model.predict([POSITIVE])[0]
    assert answer["label"] == "positive" == expected["label"]
    assert answer["probability_positive"] == pytest.approx(expected["probability_positive"], abs=1e-6)
    assert {k: answer[k] for k in ("tokens", "unknown", "truncated")} == {"tokens": 14, "unknown": 0, "truncated": False}


def test_predict_many_texts_keeps_their_order(client, model):
    texts = [NEGATIVE, "great", POSITIVE, "boring . the worst mess", "a wonderful film"]
    answers = post(client, "/v1/predict", {"texts": texts}).json()["predictions"]
    assert [a["label"] for a in answers] == ["negative", "positive", "positive", "negative", "positive"]
    singly = [model.predict([t])[0]["probability_positive"] for t in texts]
    np.testing.assert_allclose([a["probability_positive"] for a in answers], singly, atol=1e-6)
    for a in answers:
        assert a["probability"] == pytest.approx(max(a["probability_positive"], 1 - a["probability_positive"]))


def test_explain_effects_equal_leaving_each_word_out(client, model):
    text = "The plot was wonderful, but the ending was a boring mess."
    answer = post(client, "/v1/explain", {"text": text, "top_k": 4}).json()
    tokens = tokenize(text)
    full = model.predict([text])[0]["probability_positive"]
    assert answer["prediction"]["probability_positive"] == pytest.approx(full, abs=1e-6)
    assert answer["words_total"] == answer["words_considered"] == len(set(tokens)) == 9
    assert len(answer["words"]) == 4
    effects = [w["effect"] for w in answer["words"]]
    assert np.all(np.diff(np.abs(effects)) <= 1e-12)  # largest first
    for w in answer["words"]:
        without = " ".join(t for t in tokens if t != w["word"])
        assert w["effect"] == pytest.approx(full - model.predict([without])[0]["probability_positive"], abs=1e-6)
        assert w["count"] == tokens.count(w["word"])
    by_word = {w["word"]: w["effect"] for w in post(client, "/v1/explain", {"text": text, "top_k": 100}).json()["words"]}
    assert by_word["wonderful"] > 0 > by_word["boring"]


def test_explain_caps_the_words_it_leaves_out(client):
    words = [f"w{i}" for i in range(40)]  # unknown words: each still changes the sequence
    answer = post(client, "/v1/explain", {"text": "great " + " ".join(words), "top_k": 100}).json()
    assert answer["words_total"] == 41 and answer["words_considered"] == 30 == len(answer["words"])


def test_one_repeated_word_has_nothing_to_leave_out(client):
    answer = post(client, "/v1/explain", {"text": "great great great"}).json()
    assert answer["prediction"]["label"] == "positive" and answer["words"] == [] and answer["words_total"] == 1


# --------------------------------------------------------------------------- text limits and odd text


def test_long_text_is_cut_to_max_text_chars_keeping_its_end(client, model):
    text = NEGATIVE * 200 + " " + POSITIVE  # 14k characters; the model truncates "pre": keep the ending
    answer = post(client, "/v1/predict", {"text": text}).json()["prediction"]
    assert answer["truncated"] is True
    kept = text[-LIMITS.max_text_chars:]
    assert answer["tokens"] == len(tokenize(kept))
    assert answer["probability_positive"] == pytest.approx(model.predict([kept])[0]["probability_positive"], abs=1e-6)


def test_text_over_the_models_maxlen_is_truncated(client):
    answer = post(client, "/v1/predict", {"text": "a great film " * 40}).json()["prediction"]
    assert answer["tokens"] == 120 and answer["truncated"] is True  # maxlen 80 tokens


def test_huge_word_and_odd_characters_are_read_as_unknown(client):
    for text, unknown in [("great " + "x" * 1900, 1), ("great \u0000 film", 0), ("great \ud800 film", 0),
                          ("\u200f\u202egreat\u200b film", 0), ("great 映画 film 😀", 1)]:
        response = post(client, "/v1/predict", {"text": text})
        assert response.status_code == 200, (text, response.text)
        assert response.json()["prediction"]["unknown"] == unknown, text


@pytest.mark.parametrize("text,fragment", [
    ("", "no words"), ("   \n\t ", "no words"), ("😀🎬!", None), ("..., ;", "no words"), ("映画 電影", "vocabulary")])
def test_text_without_usable_words_is_422(client, text, fragment):
    response = post(client, "/v1/predict", {"text": text})
    assert_error(response, 422, *([fragment] if fragment else []))


def test_the_bad_text_in_a_batch_is_named(client):
    assert_error(post(client, "/v1/predict", {"texts": ["great", "", "bad"]}), 422, "texts[1]", "no words")


# --------------------------------------------------------------------------- malformed requests


@pytest.mark.parametrize("body,content_type,status,fragment", [
    (b'{"text": ', "application/json", 400, "not valid JSON"),
    (b"", "application/json", 400, "body is empty"),
    (b'{"text": "caf\xe9 great"}', "application/json", 400, "UTF-8"),
    (b'{"text": "great"}', "text/plain", 415, "application/json"),
    (b'{"text": "great"}', "application/x-www-form-urlencoded", 415, "application/json"),
    (b'{"text": "great"}', "", 415, "application/json"),
    (b'{"text": "great"}', "application/json; charset=latin-1", 415, "UTF-8"),
    (b'{"text": null}', "application/json", 422, "either text"),
    (b'{"text": 42}', "application/json", 422, "text: Input should be a valid string"),
    (b'{"text": ["great"]}', "application/json", 422, "valid string"),
    (b'{"text": {"a": 1}}', "application/json", 422, "valid string"),
    (b'{"texts": "great"}', "application/json", 422, "valid list"),
    (b'{"texts": ["great", 3]}', "application/json", 422, "texts.1"),
    (b'{"text": "great", "texts": ["bad"]}', "application/json", 422, "not both"),
    (b"{}", "application/json", 422, "either text"),
    (b'["great"]', "application/json", 422, "expected fields"),
    (b'"great"', "application/json", 422, "expected fields"),
    (b'{"text": "great", "model": "/etc/passwd"}', "application/json", 422, "Extra inputs"),
    (b'{"texts": []}', "application/json", 422, "empty"),
    (json.dumps({"texts": ["great"] * 9}).encode(), "application/json", 422, "holds 9 texts; the limit is 8"),
])
def test_malformed_requests_get_a_clear_4xx_and_the_next_request_works(client, body, content_type, status, fragment):
    assert_error(post(client, "/v1/predict", body, content_type), status, fragment)
    assert post(client, "/v1/predict", {"text": "great"}).status_code == 200


@pytest.mark.parametrize("body,fragment", [
    ({"text": "great", "top_k": 0}, "top_k"), ({"text": "great", "top_k": "5"}, "top_k"),
    ({"text": "great", "top_k": 1.5}, "top_k"), ({"texts": ["great"]}, "text"), ({"text": None}, "text")])
def test_explain_checks_its_fields(client, body, fragment):
    assert_error(post(client, "/v1/explain", body), 422, fragment)


def test_body_over_the_limit_is_413(client):
    big = json.dumps({"text": "great " * 40_000}).encode()
    assert_error(post(client, "/v1/predict", big), 413, "limit is 200000")


def test_chunked_body_without_length_is_413(client):
    # (the test client sends the whole stream; test_serve_server shows a real server stops reading early)
    chunks = (b" " * 10_000 for _ in range(100))
    response = client.post("/v1/predict", content=chunks, headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "larger than the limit")


def test_unknown_paths_methods_and_task_endpoints(client):
    assert_error(client.get("/v1/nothing"), 404, "no such endpoint")
    assert_error(client.get("/v1/predict"), 405, "GET is not allowed")
    assert_error(post(client, "/v1/generate", {"text": "to be"}), 404, "sentiment model", "charlm")
    assert_error(post(client, "/v1/translate", {"text": "hello"}), 404, "sentiment model", "seq2seq")


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                           max_leaves=12)
FIELDS = st.dictionaries(st.sampled_from(["text", "texts", "top_k", "beam", "x"]), JSON_VALUES, max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(FIELDS.map(lambda d: json.dumps(d).encode()), JSON_VALUES.map(lambda v: json.dumps(v).encode()),
                      st.binary(max_size=64)),
       path=st.sampled_from(["/v1/predict", "/v1/explain", "/v1/translate", "/v1/generate"]))
def test_no_body_ever_causes_a_server_error(client, body, path):
    response = post(client, path, body)
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert response.json()["error"]["status"] == response.status_code


# --------------------------------------------------------------------------- timeouts, queue, batching


class SlowModel:
    """A real model whose batches take `delay` seconds longer (a stand-in for an overloaded server)."""

    def __init__(self, model, delay):
        self.model, self.delay = model, delay

    def __getattr__(self, name):
        return getattr(self.model, name)

    def probabilities(self, sequences):
        time.sleep(self.delay)
        return self.model.probabilities(sequences)


def test_a_slow_answer_is_503_and_the_server_recovers(model):
    limits = ServeLimits(timeout_seconds=0.2)
    slow = SlowModel(model, delay=0.6)
    with TestClient(create_app(slow, limits, engine=ENGINE)) as test_client:
        assert_error(post(test_client, "/v1/predict", {"text": "great"}), 503, "did not answer within 0.2 s")
        slow.delay = 0.0
        time.sleep(0.6)  # the abandoned batch finishes in the model thread
        assert post(test_client, "/v1/predict", {"text": "great"}).status_code == 200


def test_batcher_combines_waiting_requests_and_refuses_beyond_the_queue():
    calls = []

    def fn(items):
        calls.append(len(items))
        time.sleep(0.05)
        return np.array([float(x.sum()) for x in items])

    async def scenario():
        from concurrent.futures import ThreadPoolExecutor

        batcher = Batcher(fn, batch_texts=8, max_queued_texts=12, executor=ThreadPoolExecutor(1))
        batcher.start()
        alone = await batcher.run([np.array([5, 5])])
        jobs = [batcher.run([np.array([i]), np.array([i, 1])]) for i in range(6)]  # 12 texts queued at once
        results = await asyncio.gather(*jobs)
        assert alone.tolist() == [10.0]
        with pytest.raises(QueueFull):
            await asyncio.gather(*[batcher.run([np.array([0])] * 7) for _ in range(2)])
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert [r.tolist() for r in results] == [[float(i), float(i + 1)] for i in range(6)]
    assert calls[:3] == [1, 8, 4]  # an idle server runs a request at once; queued ones go together, 8 at most


# --------------------------------------------------------------------------- limits, docs, page


@pytest.mark.parametrize("kwargs,fragment", [
    ({"max_text_chars": 2_000_000}, "could never arrive"), ({"max_texts": 5000}, "could never be queued"),
    ({"explain_max_words": 4096}, "could never be queued"), ({"timeout_seconds": float("nan")}, "timeout_seconds"),
    ({"timeout_seconds": 0}, "timeout_seconds"), ({"max_texts": 0}, "max_texts"), ({"batch_texts": 2.5}, "batch_texts")])
def test_inconsistent_limits_are_refused_at_startup(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        ServeLimits(**kwargs)


def test_host_warnings():
    assert check_host("127.0.0.1") is None and check_host("::1") is None and check_host("localhost") is None
    assert "every network interface" in check_host("0.0.0.0") and "every network interface" in check_host("::")
    assert "reachable" in check_host("192.168.1.5")


def test_openapi_documents_the_endpoints_and_takes_no_model_location(client):
    schema = client.get("/openapi.json").json()
    assert {"/healthz", "/v1/model", "/v1/predict", "/v1/explain", "/v1/translate"} <= set(schema["paths"])
    fields = {name for s in schema["components"]["schemas"].values() for name in s.get("properties", {})}
    assert fields.isdisjoint({"path", "url", "bundle", "model", "model_path", "file"})
    assert client.get("/docs").status_code == 200


def test_page_is_served_with_no_outside_resources(client):
    response = client.get("/")
    assert response.status_code == 200 and 'id="review"' in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]
    for name in ("/", "/static/app.js", "/static/style.css"):
        text = client.get(name).text
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, name


# --------------------------------------------------------------------------- seq2seq bundles


@pytest.fixture(scope="module")
def seq2seq_bundle(tmp_path_factory):
    """A seq2seq bundle with random weights (the endpoint is tested, not the model's skill)."""
    seq2seq = pytest.importorskip("rnnkit.tasks.seq2seq")
    from rnnkit.bundle import save_bundle
    from rnnkit.data.generated import generated_pairs

    settings = seq2seq.Seq2SeqSettings(dataset="reverse", source_level="char", target_level="char",
                                       max_source_len=12, max_target_len=12)
    source, target = seq2seq.build_vocabs(generated_pairs("reverse", 200, seed=0), settings)
    config = ModelConfig(vocab_size=len(source), target_vocab_size=len(target), architecture="encoder_decoder",
                         cell="gru", embedding_dim=8, hidden_size=8)
    rng = np.random.default_rng(0)
    tensors = {k: rng.normal(0, 0.5, v).astype(np.float32) for k, v in parameter_shapes(config).items()}
    out = tmp_path_factory.mktemp("seq2seq") / "reverse"
    from dataclasses import asdict
    save_bundle(out, "seq2seq", config, {"source": source.to_json(), "target": target.to_json()}, tensors,
                settings=asdict(settings))
    try:
        return load_predictor(out, engine=ENGINE)
    except Exception as exc:  # the seq2seq task is being written alongside
        pytest.skip(f"this rnnkit cannot open seq2seq bundles yet: {exc}")


def test_translate_equals_the_model_and_checks_its_options(seq2seq_bundle):
    model = seq2seq_bundle
    with TestClient(create_app(model, LIMITS, engine=ENGINE)) as c:
        one = post(c, "/v1/translate", {"text": "abc"}).json()["translation"]
        assert one == model.translate(["abc"])[0]
        many = post(c, "/v1/translate", {"texts": ["abc", "hello"], "beam": 3}).json()["translations"]
        assert many == model.translate(["abc", "hello"], beam=3)
        assert_error(post(c, "/v1/translate", b'{"text": "abc", "alpha": NaN}'), 422, "alpha")
        assert_error(post(c, "/v1/translate", {"text": "abc", "beam": 0}), 422, "beam")
        assert_error(post(c, "/v1/translate", {"text": "abc", "max_len": 10**6}), 422, "max_len")
        assert_error(post(c, "/v1/translate", {"text": "abcdefghijklmnopq"}), 422, "maximum")
        cut = post(c, "/v1/translate", {"text": "abcdefghijklmnopq", "truncate": True}).json()["translation"]
        assert cut["truncated"] is True
        assert_error(post(c, "/v1/translate", {"text": "x" * 2001, "truncate": False}), 422, "limit of 2000")
        assert_error(post(c, "/v1/predict", {"text": "abc"}), 404, "seq2seq model")
        assert c.get("/v1/model").json()["endpoints"] == ["/v1/translate"]
