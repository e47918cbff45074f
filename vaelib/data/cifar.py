"""CIFAR-10 from the binary distribution (never from the pickled Python version).

``cifar-10-binary.tar.gz`` holds the directory ``cifar-10-batches-bin/`` with
five training batches ``data_batch_1.bin`` ... ``data_batch_5.bin`` and one
test batch ``test_batch.bin`` of 10,000 records each.  A record is one label
byte (0-9) followed by 3,072 pixel bytes: the 32 x 32 red channel, then green,
then blue, each in row-major order.

The archive is read member by member with :mod:`tarfile`; nothing is extracted
to disk.  An already-extracted ``cifar-10-batches-bin/`` directory is accepted
too; its files are checked against their own SHA-256 digests.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch

from .download import default_cache_dir, ensure_file, join_url, resolve_base_url, verify_sha256
from .types import ImageSet, Splits

__all__ = ["CIFAR10_BATCH_SHA256", "CIFAR10_SHA256", "CIFAR10_URL", "load_cifar10"]

_DATASET = "CIFAR-10"

#: Base URL of the CIFAR-10 archive (Alex Krizhevsky's page at the University of Toronto).
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/"

_ARCHIVE = "cifar-10-binary.tar.gz"
_BATCH_DIR = "cifar-10-batches-bin"
_TRAIN_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_TEST_BATCH = "test_batch.bin"
_ALL_BATCHES = (*_TRAIN_BATCHES, _TEST_BATCH)

#: SHA-256 of the archive (170,052,171 bytes).
CIFAR10_SHA256: dict[str, str] = {
    _ARCHIVE: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
}

#: SHA-256 of each batch file inside the archive (30,730,000 bytes each); used
#: to check an already-extracted ``cifar-10-batches-bin/`` directory.
CIFAR10_BATCH_SHA256: dict[str, str] = {
    "data_batch_1.bin": "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5",
    "data_batch_2.bin": "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed",
    "data_batch_3.bin": "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67",
    "data_batch_4.bin": "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48",
    "data_batch_5.bin": "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add",
    _TEST_BATCH: "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b",
}

_CHANNELS, _SIDE, _NUM_CLASSES = 3, 32, 10
_RECORD_BYTES = 1 + _CHANNELS * _SIDE * _SIDE
_MAX_RECORDS = 10_000


def _check_size(size: int, what: str) -> None:
    if size <= 0 or size % _RECORD_BYTES or size // _RECORD_BYTES > _MAX_RECORDS:
        raise ValueError(
            f"{_DATASET}: {what} has {size} bytes; a batch must hold between 1 and {_MAX_RECORDS} "
            f"records of {_RECORD_BYTES} bytes (the official batches hold exactly {_MAX_RECORDS})"
        )


def _parse_batch(data: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Split raw batch bytes into uint8 images (n, 3, 32, 32) and uint8 labels (n,)."""
    _check_size(len(data), what)
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, _RECORD_BYTES)
    labels = records[:, 0].copy()
    if int(labels.max()) >= _NUM_CLASSES:
        raise ValueError(f"{_DATASET}: {what} has label {int(labels.max())}; labels must lie in 0..{_NUM_CLASSES - 1}")
    images = records[:, 1:].reshape(-1, _CHANNELS, _SIDE, _SIDE).copy()
    return images, labels


def _read_archive(path: Path) -> dict[str, bytes]:
    """Read the six batch members of the archive at ``path`` into memory."""
    wanted = {f"{_BATCH_DIR}/{name}": name for name in _ALL_BATCHES}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            for member in archive:
                member_name = member.name.removeprefix("./")
                if member_name not in wanted:
                    continue
                what = f"member {member_name!r} of archive {path}"
                if wanted[member_name] in found:
                    raise ValueError(f"{_DATASET}: {what} appears more than once")
                if not member.isfile():
                    raise ValueError(f"{_DATASET}: {what} is not a regular file")
                _check_size(member.size, what)
                handle = archive.extractfile(member)
                if handle is None:  # pragma: no cover - isfile() members always have data
                    raise ValueError(f"{_DATASET}: {what} has no data")
                with handle:
                    data = handle.read(member.size)
                if len(data) != member.size:
                    raise ValueError(f"{_DATASET}: {what} is truncated ({len(data)} of {member.size} bytes)")
                found[wanted[member_name]] = data
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise ValueError(f"{_DATASET}: archive {path} is not a readable tar.gz file ({exc})") from exc
    missing = [f"{_BATCH_DIR}/{name}" for name in _ALL_BATCHES if name not in found]
    if missing:
        raise ValueError(f"{_DATASET}: archive {path} lacks the members {', '.join(missing)}")
    return found


def _read_directory(directory: Path) -> dict[str, bytes]:
    """Read the six batch files of an extracted ``cifar-10-batches-bin/`` directory."""
    batches = {}
    for name in _ALL_BATCHES:
        path = directory / name
        _check_size(path.stat().st_size, f"file {path}")
        verify_sha256(path, CIFAR10_BATCH_SHA256[name])
        batches[name] = path.read_bytes()
    return batches


def _image_set(parts: list[tuple[np.ndarray, np.ndarray]], name: str) -> ImageSet:
    images = np.concatenate([images for images, _ in parts])
    labels = np.concatenate([labels for _, labels in parts])
    return ImageSet(
        images=torch.from_numpy(images).to(torch.float32).div_(255.0),
        labels=torch.from_numpy(labels.astype(np.int64)),
        name=name,
    )


def load_cifar10(
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    mirror: str | None = None,
    progress: bool = True,
) -> Splits:
    """Load CIFAR-10 from its binary distribution.

    The data are taken from, in this order: the archive
    ``cifar-10-binary.tar.gz`` in ``root`` (checked against
    ``CIFAR10_SHA256``); an extracted ``cifar-10-batches-bin/`` directory
    in ``root`` holding all six batch files (each checked against
    ``CIFAR10_BATCH_SHA256``); a fresh download of the archive if
    ``download`` is true.

    Parameters
    ----------
    root
        Directory holding the archive or the extracted directory.  ``None``
        means ``default_cache_dir() / "cifar10"``.
    download
        Download the archive if neither source is present (and replace an
        archive whose checksum is wrong).  Without it a missing archive raises
        :class:`FileNotFoundError`.
    mirror
        Base URL to download ``cifar-10-binary.tar.gz`` from instead of
        ``CIFAR10_URL``.  The archive is verified whatever its source.
    progress
        Show a progress bar while downloading.

    Returns
    -------
    Splits
        ``train`` (the 50,000 records of batches 1-5 in order, ``"cifar10-train"``)
        and ``test`` (10,000, ``"cifar10-test"``); images are float32 of shape
        (N, 3, 32, 32) in [0, 1] with RGB channels, labels int64 classes 0-9.

    Raises
    ------
    FileNotFoundError
        If no data are present and ``download`` is false.
    vaelib.data.download.ChecksumError
        If the archive or a batch file does not have the expected SHA-256.
    ValueError
        If the archive lacks a batch, or a batch has an unexpected size or label.
    """
    base_url = resolve_base_url(mirror, CIFAR10_URL, _DATASET)
    directory = default_cache_dir() / "cifar10" if root is None else Path(root).expanduser()
    archive = directory / _ARCHIVE
    extracted = directory / _BATCH_DIR

    if archive.is_file() or (download and not _is_complete(extracted)):
        path = ensure_file(
            directory,
            _ARCHIVE,
            CIFAR10_SHA256[_ARCHIVE],
            base_url=base_url,
            download=download,
            dataset=_DATASET,
            progress=progress,
        )
        batches = _read_archive(path)
    elif _is_complete(extracted):
        batches = _read_directory(extracted)
    else:
        raise FileNotFoundError(
            f"{_DATASET}: neither the archive {_ARCHIVE!r} nor an extracted {_BATCH_DIR + '/'!r} directory "
            f"with {', '.join(_ALL_BATCHES)} was found in directory {directory}. "
            f"Pass download=True to fetch {join_url(base_url, _ARCHIVE)}, or copy the archive there yourself."
        )

    train = [_parse_batch(batches[name], f"batch {name}") for name in _TRAIN_BATCHES]
    test = [_parse_batch(batches[_TEST_BATCH], f"batch {_TEST_BATCH}")]
    return Splits(train=_image_set(train, "cifar10-train"), test=_image_set(test, "cifar10-test"))


def _is_complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in _ALL_BATCHES)
