import functools
import hashlib
import http.server
import threading

import numpy as np
import pytest

from rnnkit.data import imdb
from rnnkit.data.download import download
from rnnkit.data.synthetic import write_imdb_layout
from rnnkit.errors import DataError


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("RNNKIT_IMDB", raising=False)


def test_tarball_and_folder_read_the_same_reviews(tmp_path):
    tar = write_imdb_layout(tmp_path / "imdb.tar.gz", per_split=20)
    folder = write_imdb_layout(tmp_path / "folder", per_split=20, tarball=False)
    from_tar = sorted((r.split, r.label, r.text) for r in imdb.iter_reviews(tar))
    from_folder = sorted((r.split, r.label, r.text) for r in imdb.iter_reviews(folder))
    assert from_tar == from_folder and len(from_tar) == 40


def test_corpus_is_cached_and_vocab_comes_from_train_only(tmp_path):
    tar = write_imdb_layout(tmp_path / "imdb.tar.gz", per_split=30)
    first = imdb.load_corpus(tar, progress=False)
    assert (tmp_path / "cache").is_dir()
    second = imdb.load_corpus(tar, progress=False)  # from the cache
    assert first.words == second.words
    for split in imdb.SPLITS:
        assert all(np.array_equal(a, b) for a, b in zip(first.ids[split], second.ids[split]))
        np.testing.assert_array_equal(first.labels[split], second.labels[split])
    train_words = {w for r in imdb.iter_reviews(tar) if r.split == "train" for w in __import__("rnnkit").data.vocab.tokenize(r.text)}
    assert set(first.words) == train_words
    vocab = first.vocab(10)
    seqs, _ = first.split("train", 10)
    assert len(vocab) == 10 and max(int(s.max()) for s in seqs) < 10


def test_missing_data_names_every_fix(tmp_path):
    with pytest.raises(DataError) as info:
        imdb.locate(None)
    message = str(info.value)
    assert "rnnkit data imdb" in message and "--data" in message and "RNNKIT_IMDB" in message and "rnnkit demo" in message


def test_corrupt_tarball_and_missing_split(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"this is not a tarball" * 10)
    with pytest.raises(DataError, match="not a readable IMDB tarball"):
        imdb.load_corpus(bad, progress=False)
    folder = write_imdb_layout(tmp_path / "f", per_split=10, tarball=False)
    for f in (folder / "aclImdb" / "test" / "neg").iterdir():
        f.unlink()
    (folder / "aclImdb" / "test" / "neg").rmdir()
    with pytest.raises(DataError, match="test/neg is missing"):
        imdb.load_corpus(folder, progress=False)


def test_mislabelled_file_is_reported(tmp_path):
    folder = write_imdb_layout(tmp_path / "f", per_split=10, tarball=False)
    (folder / "aclImdb" / "train" / "pos" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="ID_RATING.txt"):
        imdb.load_corpus(folder, progress=False)


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_verifies_checksum_from_a_local_server(http_server, tmp_path):
    root, url = http_server
    tar = write_imdb_layout(root / "aclImdb_v1.tar.gz", per_split=10)
    digest = hashlib.sha256(tar.read_bytes()).hexdigest()
    dest = download(f"{url}/aclImdb_v1.tar.gz", tmp_path / "dl" / "imdb.tar.gz", digest, progress=False)
    assert dest.read_bytes() == tar.read_bytes()
    assert len(imdb.load_corpus(dest, progress=False).ids["train"]) == 10


def test_download_with_a_wrong_checksum_keeps_nothing(http_server, tmp_path):
    root, url = http_server
    write_imdb_layout(root / "aclImdb_v1.tar.gz", per_split=4)
    with pytest.raises(DataError, match="nothing was saved"):
        download(f"{url}/aclImdb_v1.tar.gz", tmp_path / "dl" / "x.tar.gz", "0" * 64, progress=False)
    assert list((tmp_path / "dl").iterdir()) == []


def test_download_offline_says_how_to_use_a_local_copy(tmp_path):
    with pytest.raises(DataError, match="--data"):
        download("http://127.0.0.1:9/none.tar.gz", tmp_path / "x", "0" * 64, progress=False, timeout=2)
