"""Checksummed downloads into a local cache, using only the standard library.

Every file that vaelib fetches has a known SHA-256 digest.  A download is
streamed into a temporary file that lives in the destination directory, hashed
while it is written, flushed to disk and compared with the expected digest.
Only a complete, verified file is moved into place (atomically, with
:func:`os.replace`); after any failure -- an HTTP error, a connection that
closes early, a checksum mismatch, a ``KeyboardInterrupt`` -- the temporary
file is deleted, so the cache never holds a half-written file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import tempfile
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

__all__ = [
    "ChecksumError",
    "DownloadError",
    "default_cache_dir",
    "ensure_file",
    "fetch",
    "file_sha256",
    "join_url",
    "missing_files_error",
    "resolve_base_url",
    "verify_sha256",
]

#: Environment variable that overrides the default cache directory.
CACHE_ENV_VAR = "VAELIB_DATA"

#: Seconds to wait for the server to answer or to send the next block.
DEFAULT_TIMEOUT = 60.0

_CHUNK_SIZE = 1 << 20
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_ALLOWED_SCHEMES = ("http://", "https://", "file://")


class ChecksumError(ValueError):
    """A file's SHA-256 digest differs from the expected one."""


class DownloadError(OSError):
    """A download failed: HTTP error, unreachable host, or an incomplete body."""


def default_cache_dir() -> Path:
    """Return the directory under which datasets are cached.

    Returns
    -------
    pathlib.Path
        The value of the environment variable ``VAELIB_DATA`` if it is set and
        not empty, otherwise ``~/.cache/vaelib``.  The directory is not created.
    """
    configured = os.environ.get(CACHE_ENV_VAR, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "vaelib"


def _normalise_sha256(sha256: str) -> str:
    digest = str(sha256).strip().lower()
    if not _SHA256_RE.fullmatch(digest):
        raise ValueError(f"sha256 must be 64 hexadecimal characters, got {sha256!r}")
    return digest


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the lowercase hexadecimal SHA-256 digest of the file at ``path``."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK_SIZE), b""):
            hasher.update(block)
    return hasher.hexdigest()


def _mismatch_message(path: Path, expected: str, actual: str) -> str:
    return f"checksum mismatch for {path.name!r} ({path}): expected SHA-256 {expected}, got {actual}"


def verify_sha256(path: str | os.PathLike[str], sha256: str) -> None:
    """Check that the file at ``path`` has the SHA-256 digest ``sha256``.

    Parameters
    ----------
    path
        File to hash.
    sha256
        Expected digest, 64 hexadecimal characters (case-insensitive).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ChecksumError
        If the digests differ; the message names the file and both digests.
    ValueError
        If ``sha256`` is not a well-formed digest.
    """
    expected = _normalise_sha256(sha256)
    path = Path(path)
    actual = file_sha256(path)
    if actual != expected:
        raise ChecksumError(_mismatch_message(path, expected, actual))


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None


def _open(url: str, timeout: float) -> http.client.HTTPResponse:
    if not url.startswith(_ALLOWED_SCHEMES):
        raise ValueError(f"url must start with one of {', '.join(_ALLOWED_SCHEMES)}; got {url!r}")
    request = urllib.request.Request(url, headers={"User-Agent": "vaelib-data-downloader"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DownloadError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"could not download {url}: {exc.reason}") from exc
    except (http.client.HTTPException, OSError) as exc:
        raise DownloadError(f"could not download {url}: {exc}") from exc


def _stream(response: BinaryIO, out: BinaryIO, url: str, expected_length: int | None, bar: tqdm) -> str:
    """Copy ``response`` into ``out``; return the SHA-256 of what was written."""
    hasher = hashlib.sha256()
    received = 0
    while True:
        try:
            block = response.read(_CHUNK_SIZE)
        except (http.client.HTTPException, OSError) as exc:
            raise DownloadError(f"download of {url} failed after {received} bytes: {exc}") from exc
        if not block:
            break
        hasher.update(block)
        out.write(block)
        received += len(block)
        bar.update(len(block))
    if expected_length is not None and received != expected_length:
        raise DownloadError(
            f"download of {url} is incomplete: the server announced {expected_length} bytes "
            f"but {received} arrived before the connection closed"
        )
    return hasher.hexdigest()


def fetch(
    url: str,
    sha256: str,
    dest: str | os.PathLike[str],
    *,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Download ``url`` to ``dest`` unless a verified copy is already there.

    If ``dest`` exists and has the expected digest it is returned untouched.
    If it exists with a different digest (a stale or damaged copy) a warning is
    issued and the file is downloaded again; the old copy is only replaced once
    the new one is complete and verified, so a failed retry leaves it as it was.

    Parameters
    ----------
    url
        Address to download from (``http://``, ``https://`` or ``file://``).
    sha256
        Expected SHA-256 digest of the file, 64 hexadecimal characters.
    dest
        Final path of the file.  Missing parent directories are created.
    progress
        Show a tqdm progress bar while downloading.
    timeout
        Seconds to wait for the connection and for each block of data.

    Returns
    -------
    pathlib.Path
        ``dest``, now holding a file with the expected digest.

    Raises
    ------
    DownloadError
        On an HTTP error, an unreachable server or a body shorter (or longer)
        than its ``Content-Length``; the message names the URL.
    ChecksumError
        If the downloaded bytes do not have the expected digest; the message
        names the file and both digests.
    """
    expected = _normalise_sha256(sha256)
    dest = Path(dest)
    if dest.is_file():
        actual = file_sha256(dest)
        if actual == expected:
            return dest
        warnings.warn(
            _mismatch_message(dest, expected, actual) + "; downloading it again",
            RuntimeWarning,
            stacklevel=2,
        )
    dest.parent.mkdir(parents=True, exist_ok=True)

    response = _open(url, timeout)
    tmp_name: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=dest.parent, prefix=f".{dest.name}.", suffix=".part", delete=False
        ) as tmp:
            tmp_name = tmp.name
            length = _content_length(response)
            with tqdm(
                total=length,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=dest.name,
                disable=not progress,
            ) as bar:
                actual = _stream(response, tmp, url, length, bar)
            tmp.flush()
            os.fsync(tmp.fileno())
        if actual != expected:
            raise ChecksumError(
                _mismatch_message(dest, expected, actual) + f" (downloaded from {url}); the download was discarded"
            )
        os.replace(tmp_name, dest)
        tmp_name = None
    finally:
        response.close()
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass
    return dest


def ensure_file(
    root: Path,
    filename: str,
    sha256: str,
    *,
    base_url: str,
    download: bool,
    dataset: str,
    progress: bool = True,
) -> Path:
    """Return ``root / filename`` after checking its digest, downloading it if allowed.

    Parameters
    ----------
    root
        Directory that holds the dataset's files.
    filename
        Name of the file inside ``root`` and at ``base_url``.
    sha256
        Expected SHA-256 digest.
    base_url
        Directory URL the file is fetched from; ``filename`` is appended.
    download
        Whether a missing or damaged file may be downloaded.
    dataset
        Human-readable dataset name used in error messages.
    progress
        Show a progress bar while downloading.

    Raises
    ------
    FileNotFoundError
        If the file is missing and ``download`` is false.
    ChecksumError
        If the file (present or downloaded) has the wrong digest.
    DownloadError
        If a download was needed and failed.
    """
    path = root / filename
    url = join_url(base_url, filename)
    if download:
        return fetch(url, sha256, path, progress=progress)
    if not path.is_file():
        raise missing_files_error(dataset, root, [filename], base_url)
    try:
        verify_sha256(path, sha256)
    except ChecksumError as exc:
        raise ChecksumError(
            f"{dataset}: {exc}. Delete the file, or pass download=True to fetch a fresh copy."
        ) from None
    return path


def missing_files_error(dataset: str, root: Path, missing: list[str], base_url: str) -> FileNotFoundError:
    """Build the error raised when dataset files are absent and downloading is off."""
    names = ", ".join(repr(name) for name in missing)
    noun = "file" if len(missing) == 1 else "files"
    return FileNotFoundError(
        f"{dataset}: {noun} {names} not found in directory {root}. "
        f"Pass download=True to fetch from {base_url}, or copy the {noun} there yourself."
    )


def resolve_base_url(mirror: str | None, default: str, dataset: str) -> str:
    """Return ``mirror`` if given (after checking its scheme), else ``default``.

    Raises
    ------
    ValueError
        If ``mirror`` is not a string starting with ``http://``, ``https://`` or
        ``file://``.
    """
    if mirror is None:
        return default
    if not isinstance(mirror, str) or not mirror.startswith(_ALLOWED_SCHEMES):
        raise ValueError(
            f"{dataset}: mirror must be a URL starting with one of "
            f"{', '.join(_ALLOWED_SCHEMES)} (or None for {default}); got {mirror!r}"
        )
    return mirror


def join_url(base_url: str, filename: str) -> str:
    """Append ``filename`` to the directory URL ``base_url`` (one slash between them)."""
    return base_url.rstrip("/") + "/" + filename
