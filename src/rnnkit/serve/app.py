"""The HTTP API and the page for one loaded bundle (FastAPI).

    GET  /                 the page, for the bundle's task: a review -> label, probability and the words that
                           mattered; a prime -> generated text; a source text -> its translation; a text -> its
                           label (or tags), every class's probability and, on request, the words that mattered
    GET  /healthz          liveness: {"status": "ok"}
    GET  /v1/model         task, engine, model config, text settings, training metrics, limits, labels
    POST /v1/predict       sentiment and classify bundles: {"text": "..."} -> {"prediction": {...}};
                           {"texts": [...]} -> {"predictions": [...]} (classify: a text that cannot be read gets
                           {"error": ...} in its place)
    POST /v1/explain       {"text": "...", "top_k": 10} -> prediction + the words that pushed it most
    POST /v1/generate      character and word LM bundles: {"prime": "...", "length": 200, "temperature": 0.8,
                           "seed": 1} -> the continuation and facts (seed used, unseen prime characters or words);
                           "stream": true: NDJSON
    POST /v1/translate     seq2seq bundles: {"text": "..."} or {"texts": [...]}
    (an endpoint of another task answers 404 naming this bundle's task)
    GET  /openapi.json     the OpenAPI schema;  GET /docs  Swagger UI (its assets come from a CDN)

Every error is JSON, {"error": {"status": ..., "message": ...}}, with a 4xx status
for anything a client sent wrong; the model is chosen when the server starts
and no request can make it load another file or URL.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator
from starlette.exceptions import HTTPException

from rnnkit import __version__
from rnnkit.config import finite_json
from rnnkit.errors import InputError, RnnkitError
from rnnkit.serve.batcher import Batcher, QueueFull
from rnnkit.serve.generation import NDJSON, GenerationService
from rnnkit.serve.guard import ApiError, BodyGuard, error_body
from rnnkit.serve.limits import ServeLimits
from rnnkit.serve.sentiment import SentimentService
from rnnkit.tasks import WrongTask, require

STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {  # the page loads nothing from elsewhere, and says so to the browser
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
MAX_SERVE_BEAM = 16
MAX_OUTPUT_LEN = 1000
# endpoint -> the predictor operation it asks for (see rnnkit.tasks.protocol); a bundle's task decides which answer
ENDPOINTS = {"/v1/predict": "predict", "/v1/explain": "explain", "/v1/generate": "generate", "/v1/translate": "translate"}


def endpoints_of(predictor) -> list[str]:
    """The task endpoints this predictor answers."""
    return [path for path, operation in ENDPOINTS.items() if operation in predictor.operations]


class JSON(Response):
    """Compact JSON; text a client sent that cannot be UTF-8 (a lone surrogate) is replaced, never a 500.

    Handlers return it directly: FastAPI then skips its generic encoder (measured ~5% of a request).
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8", "replace")


# --------------------------------------------------------------------------- request / response shapes

class TextsRequest(BaseModel):
    """One text as `text`, or several as `texts` (at most max_texts); the answer mirrors it."""

    model_config = ConfigDict(extra="forbid")
    text: StrictStr | None = Field(None, description="one text")
    texts: list[StrictStr] | None = Field(None, description="several texts, answered in order")

    @model_validator(mode="after")
    def _one_of(self) -> "TextsRequest":
        if (self.text is None) == (self.texts is None):
            raise ValueError("give either text (one text, a string) or texts (a list of strings), not both")
        return self

    def all_texts(self, limits: ServeLimits) -> list[str]:
        if self.texts is None:
            return [self.text]
        if not self.texts:
            raise ApiError(422, "texts is empty; give at least one text")
        if len(self.texts) > limits.max_texts:
            raise ApiError(422, f"texts holds {len(self.texts)} texts; the limit is {limits.max_texts} "
                                "per request (split the batch)")
        return self.texts

    def answer(self, key: str, results: list) -> dict:
        return {key: results[0]} if self.texts is None else {key + "s": results}


class PredictRequest(TextsRequest):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"text": "A wonderful, moving film."}, {"texts": ["Loved it.", "A boring mess."]}]})


class TranslateRequest(TextsRequest):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": "the 3rd of March, 2021"}]})
    beam: StrictInt = Field(1, ge=1, le=MAX_SERVE_BEAM, description="beam size (1 = greedy)")
    max_len: StrictInt | None = Field(None, ge=1, le=MAX_OUTPUT_LEN, description="most output tokens (default: the model's)")
    alpha: float = Field(1.0, ge=0.0, le=5.0, allow_inf_nan=False, strict=True,  # "5" and true are refused
                         description="beam length normalisation")
    truncate: StrictBool = Field(False, description="cut a text over the model's maximum instead of refusing it")


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": "Great cast, dull plot.", "top_k": 5}]})
    text: StrictStr = Field(description="one review")
    top_k: StrictInt = Field(10, ge=1, le=100, description="how many of the most influential words to return")


class Prediction(BaseModel):
    label: str = Field(description="negative or positive")
    probability: float = Field(description="probability of that label")
    probability_positive: float
    tokens: int = Field(description="tokens in the text (after character truncation, before maxlen)")
    unknown: int = Field(description="tokens not in the vocabulary (read as <unk>)")
    truncated: bool = Field(description="the text was cut (max_text_chars, or the model's maxlen tokens)")


class PredictResponse(BaseModel):
    prediction: Prediction | None = Field(None, description="when the request gave text")
    predictions: list[Prediction] | None = Field(None, description="when the request gave texts")


class Translation(BaseModel):
    translation: str
    score: float = Field(description="log-probability of the output (length-normalised with beam > 1)")
    finished: bool = Field(description="the model ended the output itself (</s>) before max_len")
    tokens: int
    unknown: int
    truncated: bool


class TranslateResponse(BaseModel):
    translation: Translation | None = None
    translations: list[Translation] | None = None


class WordEffect(BaseModel):
    word: str
    count: int = Field(description="occurrences left out together")
    effect: float = Field(description="P(positive) with the word minus without it: > 0 pushed towards positive")


class ExplainResponse(BaseModel):
    prediction: Prediction
    words: list[WordEffect] = Field(description="largest |effect| first")
    words_considered: int
    words_total: int = Field(description="distinct words in the text; only the first explain_max_words are left out")


ERROR_RESPONSES = {status: {"description": text, "content": {"application/json": {"example": {
    "error": {"status": status, "message": text}}}}} for status, text in (
    (400, "malformed JSON or a body that is not UTF-8"), (404, "the bundle's task has no such endpoint"),
    (408, "the body did not arrive in time"), (413, "the body is over max_body_bytes"),
    (415, "the content type is not application/json"), (422, "wrong types, empty text, too many texts, bad generation settings"),
    (503, "the model is busy or took longer than the timeout"))}


# --------------------------------------------------------------------------- the app

def create_app(predictor, limits: ServeLimits | None = None, engine: str = "numpy") -> FastAPI:
    """The service for `predictor` (from `rnnkit.tasks.load_predictor`), with `limits`.

    Only the endpoints of the bundle's task are served; the others answer 404 naming the task
    (before reading the request's fields).
    """
    limits = limits or ServeLimits()
    task = predictor.bundle.task
    service = SentimentService(predictor, limits) if task == "sentiment" else None
    generator = GenerationService(predictor, limits) if task in ("charlm", "wordlm") else None
    model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnkit-model")
    model_fn = service.probabilities if service else predictor.probabilities if task == "classify" else None
    batcher = Batcher(model_fn, limits.batch_texts, limits.max_queued_texts, model_thread,
                      wait_seconds=limits.batch_wait_ms / 1000) if model_fn else None

    @asynccontextmanager
    async def lifespan(app):
        if batcher:
            batcher.start()
        yield
        if batcher:
            await batcher.stop()
        model_thread.shutdown(wait=True, cancel_futures=True)

    app = FastAPI(title="rnnkit", version=__version__, lifespan=lifespan, default_response_class=JSON,
                  description=f"A {task} model ({predictor.bundle.path.name}) served on the {engine} engine.")
    app.state.batcher = batcher
    app.add_middleware(BodyGuard, limits=limits)
    _add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def in_time(work):
        try:
            return await asyncio.wait_for(work, timeout=limits.timeout_seconds)
        except QueueFull as exc:
            raise ApiError(503, str(exc), {"Retry-After": "1"}) from None
        except asyncio.TimeoutError:
            raise ApiError(503, f"the model did not answer within {limits.timeout_seconds:g} s; "
                                "try again, or send less work", {"Retry-After": "1"}) from None

    async def model_call(items: list[np.ndarray]) -> np.ndarray:
        return await in_time(batcher.run(items))

    def not_here(path: str, summary: str, needed: str) -> None:
        """`path` for a task this bundle is not: 404 naming the bundle's task and the endpoints it answers."""
        try:
            require(predictor, ENDPOINTS[path], f"POST {path}", {op: f"POST {p}" for p, op in ENDPOINTS.items()})
        except WrongTask as exc:
            message = str(exc)

        async def unsupported():
            raise ApiError(404, message)

        app.post(path, summary=f"{summary} ({needed} bundles; this server: 404)", responses=ERROR_RESPONSES)(unsupported)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    @app.get("/healthz", summary="liveness")
    async def healthz():
        return {"status": "ok"}

    bundle = predictor.bundle
    info = {"task": task, "bundle": bundle.path.name, "engine": engine, "rnnkit_version": __version__,
            "config": bundle.config.to_dict(), "settings": bundle.settings, "metrics": bundle.metrics,
            "labels": list(service.labels) if service else _labels_of(predictor),
            "endpoints": endpoints_of(predictor), "limits": asdict(limits)}
    if generator:
        info["generation"] = generator.describe()
    info = finite_json(info)  # a bundle's metrics may hold NaN or Infinity, which JSON cannot carry

    @app.get("/v1/model", summary="what model this server runs")
    async def model_info():
        return info

    if service:
        @app.post("/v1/predict", summary="sentiment of one or many reviews", responses={
            200: {"model": PredictResponse}, **ERROR_RESPONSES})
        async def predict(request: PredictRequest):
            encoded = service.encode_all(request.all_texts(limits))
            probabilities = await model_call([ids for ids, _ in encoded])
            return JSON(request.answer("prediction", [service.prediction(p, facts)
                                                      for p, (_, facts) in zip(probabilities, encoded)]))

        @app.post("/v1/explain", summary="prediction and the words that pushed it most (leave one word out)",
                  responses={200: {"model": ExplainResponse}, **ERROR_RESPONSES})
        async def explain(request: ExplainRequest):
            plan = service.explain_plan(request.text)
            probabilities = await model_call(plan["sequences"])
            return JSON(service.explain_result(plan, probabilities, request.top_k))
    elif task == "classify":
        def cut(text: str) -> str:  # over max_text_chars: keep the side the model keeps
            n = limits.max_text_chars
            return text if len(text) <= n else (text[-n:] if predictor.settings.truncating == "pre" else text[:n])

        @app.post("/v1/predict", summary="labels of one or many texts (classify bundles: label, score, "
                  "every class's probability)", responses=ERROR_RESPONSES)
        async def predict_labels(request: PredictRequest):
            answers, readable = [], []
            for text in request.all_texts(limits):
                try:
                    ids, facts = predictor.encode(cut(text))
                except InputError as exc:
                    if request.texts is None:
                        raise ApiError(422, str(exc)) from None  # one text: its error is the answer
                    answers.append({"error": str(exc)})  # in a batch: a record in its place
                    continue
                answers.append(facts)
                readable.append((len(answers) - 1, ids))
            probabilities = await model_call([ids for _, ids in readable]) if readable else []
            for (number, _), p in zip(readable, probabilities):
                answers[number] = {**predictor.answer(p), **answers[number]}
            return JSON(request.answer("prediction", answers))

        @app.post("/v1/explain", summary="prediction and the words that pushed it most (leave one word out)",
                  responses=ERROR_RESPONSES)
        async def explain_label(request: ExplainRequest):
            plan = predictor.explain_plan(cut(request.text), limits.explain_max_words)
            probabilities = await model_call(plan["sequences"])
            return JSON(predictor.explain_result(plan, probabilities, request.top_k))
    else:
        not_here("/v1/predict", "labels of one or many texts", "sentiment or classify")
        not_here("/v1/explain", "prediction and the words that pushed it most", "sentiment or classify")

    if generator:
        async def generate(request):
            generator.admit()
            plan = generator.plan(request)
            if request.stream:
                return StreamingResponse(generator.lines(plan, model_thread), media_type=NDJSON,
                                         headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
            return JSON(await generator.run(plan, model_thread))

        # the request model is built for this server (its limits, the model's characters); FastAPI needs the
        # class itself, not the string `from __future__ import annotations` would leave
        generate.__annotations__ = {"request": generator.request_model}
        app.post("/v1/generate", summary=f"continue a text ({generator.unit.name} LM): JSON, or NDJSON lines with "
                                         "stream", responses={
            200: {"model": generator.response_model, "content": {NDJSON: {}}}, **ERROR_RESPONSES})(generate)
    else:
        not_here("/v1/generate", "continue a text", "charlm or wordlm")

    if task == "seq2seq":
        @app.post("/v1/translate", summary="translate one or many texts (seq2seq bundles)",
                  responses={200: {"model": TranslateResponse}, **ERROR_RESPONSES})
        async def translate(request: TranslateRequest):
            texts = [_cap_source(t, limits.max_text_chars, request.truncate) for t in request.all_texts(limits)]
            options = {"beam": request.beam, "max_len": request.max_len, "alpha": request.alpha,
                       "truncate": request.truncate}
            loop = asyncio.get_running_loop()
            results = await in_time(loop.run_in_executor(model_thread, lambda: predictor.translate(texts, **options)))
            return JSON(request.answer("translation", results))
    else:
        not_here("/v1/translate", "translate one or many texts", "seq2seq")

    return app


def _labels_of(predictor) -> list[str] | None:
    """A classifier's class names (in id order), for /v1/model; None for a task without labels."""
    labels = getattr(predictor, "labels", None)
    return list(labels) if labels is not None else None


def _cap_source(text: str, max_chars: int, truncate: bool) -> str:
    """A seq2seq source within max_text_chars: cut (keeping the start, as the model does) or refused."""
    if len(text) <= max_chars:
        return text
    if not truncate:
        raise ApiError(422, f"the text has {len(text)} characters, more than the limit of {max_chars}; "
                            'shorten it, or send "truncate": true')
    return text[:max_chars]


# --------------------------------------------------------------------------- errors

def _add_error_handlers(app: FastAPI) -> None:
    def answer(status: int, message: str, details: list | None = None, headers: dict | None = None) -> Response:
        return Response(error_body(status, message, details), status_code=status,
                        media_type="application/json", headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return answer(exc.status, exc.message, headers=exc.headers)

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError):
        return answer(422, str(exc))

    @app.exception_handler(RnnkitError)
    async def rnnkit_error(request: Request, exc: RnnkitError):
        return answer(422, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        message = {404: f"no such endpoint: {request.url.path} (see /openapi.json)",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, str(exc.detail))
        return answer(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        broken = [e for e in errors if e.get("type") == "json_invalid"]
        if broken:
            ctx = broken[0].get("ctx") or {}
            return answer(400, f"the body is not valid JSON ({ctx.get('error', 'parse error')}); "
                               'send e.g. {"text": "a review"}')
        return answer(422, "the request does not have the expected fields and types: "
                           + "; ".join(_describe(e) for e in errors), [_detail(e) for e in errors])


def _field(error: dict) -> str:
    loc = [str(part) for part in error.get("loc", ()) if part != "body"]
    return ".".join(loc) or "body"


def _describe(error: dict) -> str:
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{_field(error)}: {message}" if _field(error) != "body" else message


def _detail(error: dict) -> dict:
    """A validation error without the input it echoes (that may be large, or not UTF-8)."""
    return {"field": _field(error), "type": error.get("type"), "message": _describe(error)}
