"""Download-and-cache primitives: data folder resolution, resumable atomic downloads, checksums."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import DownloadError

log = logging.getLogger(__name__)

ENV_DATA_DIR = "BIODECODE_DATA_DIR"
_CHUNK = 1 << 20


def data_root(path: str | os.PathLike | None = None) -> Path:
    """Where datasets live: ``path`` if given, else ``$BIODECODE_DATA_DIR``, else the user cache."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("biodecode")) / "data"


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def parse_checksums(text: str) -> dict[str, str]:
    """Parse ``sha256sum`` output (``<hex>  <relative path>`` per line) into ``{path: hex}``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2 and len(parts[0]) == 64:
            out[parts[1].lstrip("*").strip()] = parts[0].lower()
    return out


def download_file(url: str, dest: str | os.PathLike, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Fetch ``url`` into ``dest`` unless it is already there.

    The bytes go to ``dest + ".part"`` first; an interrupted download resumes from that file with
    an HTTP Range request, and only a complete file whose SHA-256 matches (when given) is renamed
    to ``dest``. A file already at ``dest`` is returned without touching the network.
    """
    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "biodecode"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    log.info("downloading %s -> %s%s", url, dest, f" (resuming at {start} bytes)" if start else "")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = start and response.status == 206
            with open(part, "ab" if resumed else "wb") as out:
                shutil.copyfileobj(response, out, _CHUNK)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # range beyond the end: the .part is already complete
            pass
        else:
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason} (while fetching {dest})") from exc
    except (urllib.error.URLError, OSError) as exc:
        kept = part.is_file() and part.stat().st_size > 0
        if part.is_file() and not kept:
            part.unlink()
        raise DownloadError(f"{url}: download failed ({getattr(exc, 'reason', exc)})"
                            + (f"; the {part.stat().st_size} bytes received are kept in {part} for resuming" if kept else "")
                            ) from exc
    if sha256 is not None:
        got = sha256_of(part)
        if got != sha256.lower():
            part.unlink(missing_ok=True)
            raise DownloadError(f"{url}: checksum mismatch for {dest.name}: expected sha256 {sha256}, got {got}")
    os.replace(part, dest)
    return dest


def fetch_text(url: str, dest: str | os.PathLike, timeout: float = 60.0) -> str:
    """Download a small text file (e.g. ``SHA256SUMS.txt``) into ``dest`` once and return it."""
    return Path(download_file(url, dest, None, timeout)).read_text()
