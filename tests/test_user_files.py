"""A user's files are read only when they are regular files, and only up to a limit.

`--text /dev/zero` used to read without end and a FIFO to block for ever; a review
in an IMDB folder symlinked to /dev/zero did the same. Every reader of a user's
file (text, pairs, IMDB folder and tarball, labelled texts) goes through
`rnnkit.fileio.open_regular_file`, which refuses them before a byte is read.
Each call here runs in a thread with a deadline, so a regression fails instead of hanging.
"""

from __future__ import annotations

import io
import os
import tarfile
import threading

import pytest

from rnnkit.cli import main
from rnnkit.data import imdb
from rnnkit.data.pairs import read_pairs
from rnnkit.data.synthetic import write_imdb_layout
from rnnkit.data.text import read_text
from rnnkit.errors import DataError
from rnnkit.fileio import open_regular_file, read_regular_bytes


HANG = 120  # seconds: a blocked read never ends, so this only bounds a hang; a busy machine is slow, not blocked


def within(seconds: float, call, *args, **kwargs):
    """call(*args) in a thread; its result or the exception it raised. Fails if it is still running after `seconds`."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = call(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{getattr(call, '__name__', call)} still running after {seconds} s (blocked?)"
    return outcome


def refused(call, *args, fragment="not a regular file", **kwargs) -> str:
    outcome = within(HANG, call, *args, **kwargs)
    error = outcome.get("error")
    assert isinstance(error, DataError), outcome
    assert fragment in str(error), str(error)
    return str(error)


@pytest.fixture
def specials(tmp_path):
    """Paths that are not regular files: a FIFO nobody writes to, and a symlink to /dev/zero (endless)."""
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.txt"
    zero.symlink_to("/dev/zero")
    return {"fifo": fifo, "dev_zero_link": zero, "dev_zero": "/dev/zero"}


SPECIALS = ["fifo", "dev_zero_link", "dev_zero"]


@pytest.mark.parametrize("kind", SPECIALS)
def test_the_shared_helper_refuses_before_reading(specials, kind):
    message = refused(read_regular_bytes, specials[kind], 1 << 20)
    assert str(specials[kind]) in message


def test_the_shared_helper_reads_a_regular_file_within_its_limit(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"x" * 10)
    assert read_regular_bytes(tmp_path / "a.txt", 10) == b"x" * 10
    refused(read_regular_bytes, tmp_path / "a.txt", 9, fragment="10 bytes, over the 9-byte limit")
    refused(read_regular_bytes, tmp_path, 9, fragment="is a directory")
    refused(read_regular_bytes, tmp_path / "nowhere", 9, fragment="does not exist")
    with open_regular_file(tmp_path / "a.txt", 10) as handle:
        assert handle.read() == b"x" * 10


@pytest.mark.parametrize("kind", SPECIALS)
def test_read_text_refuses_pipes_and_devices(specials, kind):
    refused(read_text, specials[kind])


def test_read_text_has_a_size_limit(tmp_path):
    (tmp_path / "t.txt").write_text("hello world\n" * 10)
    assert read_text(tmp_path / "t.txt", max_bytes=120) == "hello world\n" * 10
    refused(read_text, tmp_path / "t.txt", max_bytes=100, fragment="over the 100-byte limit")


@pytest.mark.parametrize("kind", SPECIALS)
def test_read_pairs_refuses_pipes_and_devices(specials, kind):
    refused(read_pairs, specials[kind])


def test_read_pairs_has_a_size_limit(tmp_path):
    (tmp_path / "p.tsv").write_text("a\tb\n" * 10)
    assert len(read_pairs(tmp_path / "p.tsv", max_bytes=40)) == 10
    refused(read_pairs, tmp_path / "p.tsv", max_bytes=39, fragment="over the 39-byte limit")


@pytest.mark.parametrize("kind", ["fifo", "dev_zero_link"])
def test_an_imdb_review_that_is_a_pipe_or_a_device_is_refused(tmp_path, specials, kind):
    folder = write_imdb_layout(tmp_path / "imdb", per_split=4, tarball=False)
    review = folder / "aclImdb" / "train" / "pos" / "999_9.txt"
    if kind == "fifo":
        os.mkfifo(review)
    else:
        review.symlink_to("/dev/zero")
    message = refused(lambda: list(imdb.iter_reviews(folder)))
    assert "999_9.txt" in message


@pytest.mark.parametrize("kind", ["fifo", "dev_zero_link"])
def test_an_imdb_tarball_that_is_a_pipe_or_a_device_is_refused(specials, kind):
    refused(lambda: list(imdb.iter_reviews(specials[kind])))


def _tarball(tmp_path, members):
    tar = write_imdb_layout(tmp_path / "aclImdb_v1.tar.gz", per_split=4)
    out = tmp_path / "extra.tar.gz"
    with tarfile.open(tar) as source, tarfile.open(out, "w:gz") as archive:
        for member in source.getmembers():
            archive.addfile(member, source.extractfile(member) if member.isfile() else None)
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return out


def test_tar_members_that_are_links_or_devices_are_skipped_not_read(tmp_path):
    link = tarfile.TarInfo("aclImdb/train/pos/900_9.txt")
    link.type, link.linkname = tarfile.SYMTYPE, "/dev/zero"
    device = tarfile.TarInfo("aclImdb/train/neg/901_1.txt")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 5
    fifo = tarfile.TarInfo("aclImdb/test/pos/902_9.txt")
    fifo.type = tarfile.FIFOTYPE
    source = _tarball(tmp_path, [(link, None), (device, None), (fifo, None)])
    reviews = within(HANG, lambda: list(imdb.iter_reviews(source)))["value"]
    assert len(reviews) == len(list(imdb.iter_reviews(tmp_path / "aclImdb_v1.tar.gz"))) and not any(r.where.endswith(("900_9.txt", "901_1.txt", "902_9.txt")) for r in reviews)


def test_a_tar_member_over_the_review_limit_is_refused_before_it_is_extracted(tmp_path, monkeypatch):
    big = tarfile.TarInfo("aclImdb/train/pos/903_9.txt")
    big.size = 5000
    source = _tarball(tmp_path, [(big, b"a great film " * 384 + b"abcdefgh")])
    monkeypatch.setattr(imdb, "MAX_REVIEW_BYTES", 4096)
    refused(lambda: list(imdb.iter_reviews(source)), fragment="5,000 bytes, over the 4,096-byte limit for one review")


@pytest.mark.parametrize("tarball", [True, False])
def test_reviews_over_the_corpus_limit_are_refused(tmp_path, monkeypatch, tarball):
    source = write_imdb_layout(tmp_path / ("aclImdb_v1.tar.gz" if tarball else "imdb"), per_split=8, tarball=tarball)
    monkeypatch.setattr(imdb, "MAX_CORPUS_BYTES", 500)
    refused(lambda: list(imdb.iter_reviews(source)), fragment="more than 500 bytes")


@pytest.mark.parametrize("args", [
    ["train", "charlm", "--text", "{fifo}"], ["train", "charlm", "--text", "{dev_zero}"],
    ["train", "seq2seq", "--pairs", "{dev_zero_link}"], ["train", "seq2seq", "--pairs", "{fifo}"],
    ["train", "imdb", "--data", "{fifo}"], ["train", "imdb", "--data", "{dev_zero_link}"],
])
def test_the_command_line_says_one_line_and_never_blocks(tmp_path, specials, capsys, monkeypatch, args):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    argv = [a.format(**specials) for a in args] + ["--out", str(tmp_path / "out"), "--quiet", "--epochs", "1"]
    code = within(HANG, main, argv)["value"]
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("rnnkit: error: ") and err.count("\n") == 1, err
    assert "not a regular file" in err and "Traceback" not in err
