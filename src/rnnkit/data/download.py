"""Download a file with a progress bar and a checksum check, atomically.

Nothing is left at the destination unless the whole file arrived and its
checksum matched.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from rnnkit.errors import DataError
from rnnkit.fileio import atomic_path

CHUNK = 1 << 20


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: str | os.PathLike, checksum: str, algorithm: str = "sha256",
             progress: bool = True, timeout: float = 30.0) -> Path:
    """Fetch `url` to `dest`, verifying its `algorithm` digest; return `dest`.

    Raises DataError when offline, on HTTP errors, or when the checksum differs.
    """
    from tqdm import tqdm

    dest = Path(dest)
    try:
        response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (http(s) URL from the user/CLI)
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(f"cannot download {url} ({getattr(exc, 'reason', exc)}); if this machine is offline, "
                        f"copy the file from elsewhere and pass its path with --data") from None
    digest = hashlib.new(algorithm)
    total = int(response.headers.get("Content-Length") or 0) or None
    with response, atomic_path(dest) as tmp, open(tmp, "wb") as out, tqdm(
            total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
        for block in iter(lambda: response.read(CHUNK), b""):
            out.write(block)
            digest.update(block)
            bar.update(len(block))
        out.flush()
        if digest.hexdigest() != checksum.lower():
            raise DataError(f"{url} arrived with {algorithm} {digest.hexdigest()}, expected {checksum}; "
                            "the download is corrupt or the file changed upstream — nothing was saved, try again")
    return dest
