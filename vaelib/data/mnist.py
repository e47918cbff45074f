"""MNIST and Fashion-MNIST from their IDX files.

Both datasets ship as four gzip-compressed IDX files: training images and
labels (60,000 examples) and test images and labels (10,000 examples), each
image 28 x 28 grey levels.  The loaders verify every file's SHA-256 digest
before parsing it.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from .download import default_cache_dir, ensure_file, missing_files_error, resolve_base_url
from .types import ImageSet, Splits

__all__ = [
    "FASHION_MNIST_SHA256",
    "FASHION_MNIST_URL",
    "MNIST_SHA256",
    "MNIST_URL",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
]

#: Base URL of the MNIST files.  The original site, http://yann.lecun.com/exdb/mnist/,
#: is often unreachable; this mirror (the one torchvision uses) serves the same files.
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

#: Base URL of the Fashion-MNIST files, as published by Zalando Research.
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

_TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
_TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
_TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
_TEST_LABELS = "t10k-labels-idx1-ubyte.gz"

#: SHA-256 of each MNIST file (sizes in bytes in the comments).
MNIST_SHA256: dict[str, str] = {
    _TRAIN_IMAGES: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",  # 9,912,422
    _TRAIN_LABELS: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",  # 28,881
    _TEST_IMAGES: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",  # 1,648,877
    _TEST_LABELS: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",  # 4,542
}

#: SHA-256 of each Fashion-MNIST file (sizes in bytes in the comments).
FASHION_MNIST_SHA256: dict[str, str] = {
    _TRAIN_IMAGES: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",  # 26,421,880
    _TRAIN_LABELS: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",  # 29,515
    _TEST_IMAGES: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",  # 4,422,102
    _TEST_LABELS: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",  # 5,148
}

# IDX type codes and the big-endian numpy types they stand for.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_NUM_CLASSES = 10
_IMAGE_SIZE = 28


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as handle:
        raw = handle.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"IDX file {path}: corrupt gzip stream ({exc})") from exc


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not, into a numpy array.

    The IDX header is two zero bytes, a type code, the number of dimensions
    ``d`` and ``d`` big-endian 32-bit sizes; the data follow in C order.
    Compression is detected from the gzip magic bytes, not the file name.

    Parameters
    ----------
    path
        The file to read.

    Returns
    -------
    numpy.ndarray
        A writable array in native byte order with the shape and type the
        header declares (``uint8`` for the MNIST files).

    Raises
    ------
    ValueError
        If the magic number, the type code or the number of dimensions is
        invalid, or if the data size differs from what the header declares.
        The message names the file.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"IDX file {path}: {len(raw)} bytes is too short for the 4-byte magic number")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"IDX file {path}: bad magic number 0x{raw[:4].hex()}; an IDX file starts with two zero bytes"
        )
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        allowed = ", ".join(f"0x{code:02X}" for code in _IDX_DTYPES)
        raise ValueError(f"IDX file {path}: unknown type code 0x{type_code:02X}; allowed codes are {allowed}")
    if ndim == 0:
        raise ValueError(f"IDX file {path}: header declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(
            f"IDX file {path}: header declares {ndim} dimensions ({header_size} header bytes) "
            f"but the file holds only {len(raw)} bytes"
        )
    shape = tuple(int(size) for size in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header_size
    if actual != expected:
        raise ValueError(
            f"IDX file {path}: header declares shape {shape} of {dtype.name} ({expected} data bytes) "
            f"but the file holds {actual} data bytes"
        )
    data = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header_size)
    return data.reshape(shape).astype(dtype.newbyteorder("="))


def _to_image_set(images: np.ndarray, labels: np.ndarray, name: str, files: tuple[Path, Path]) -> ImageSet:
    image_file, label_file = files
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (_IMAGE_SIZE, _IMAGE_SIZE):
        raise ValueError(
            f"{name}: {image_file} must hold uint8 images of shape (N, {_IMAGE_SIZE}, {_IMAGE_SIZE}), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(
            f"{name}: {label_file} must hold uint8 labels of shape (N,), got {labels.dtype} {labels.shape}"
        )
    if labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{name}: {label_file} has {labels.shape[0]} labels but {image_file} has {images.shape[0]} images"
        )
    if labels.size and int(labels.max()) >= _NUM_CLASSES:
        raise ValueError(
            f"{name}: {label_file} has label {int(labels.max())}; labels must lie in 0..{_NUM_CLASSES - 1}"
        )
    pixels = torch.from_numpy(images).to(torch.float32).div_(255.0).unsqueeze(1)
    return ImageSet(images=pixels, labels=torch.from_numpy(labels.astype(np.int64)), name=name)


def _load_idx_dataset(
    dataset: str,
    prefix: str,
    checksums: dict[str, str],
    default_url: str,
    root: str | os.PathLike[str] | None,
    download: bool,
    mirror: str | None,
    progress: bool,
) -> Splits:
    base_url = resolve_base_url(mirror, default_url, dataset)
    directory = default_cache_dir() / prefix if root is None else Path(root).expanduser()
    filenames = (_TRAIN_IMAGES, _TRAIN_LABELS, _TEST_IMAGES, _TEST_LABELS)
    if not download:
        missing = [name for name in filenames if not (directory / name).is_file()]
        if missing:
            raise missing_files_error(dataset, directory, missing, base_url)
    paths = {
        filename: ensure_file(
            directory,
            filename,
            checksums[filename],
            base_url=base_url,
            download=download,
            dataset=dataset,
            progress=progress,
        )
        for filename in filenames
    }
    set_prefix = prefix.replace("_", "-")
    splits = {}
    for split, image_name, label_name in (
        ("train", _TRAIN_IMAGES, _TRAIN_LABELS),
        ("test", _TEST_IMAGES, _TEST_LABELS),
    ):
        files = (paths[image_name], paths[label_name])
        splits[split] = _to_image_set(read_idx(files[0]), read_idx(files[1]), f"{set_prefix}-{split}", files)
    return Splits(train=splits["train"], test=splits["test"])


def load_mnist(
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    mirror: str | None = None,
    progress: bool = True,
) -> Splits:
    """Load MNIST handwritten digits.

    Parameters
    ----------
    root
        Directory holding the four ``*-ubyte.gz`` files.  ``None`` means
        ``default_cache_dir() / "mnist"``.
    download
        Download missing files (and replace files whose checksum is wrong).
        Without it a missing file raises :class:`FileNotFoundError`.
    mirror
        Base URL to download from instead of ``MNIST_URL``, a mirror of
        the original http://yann.lecun.com/exdb/mnist/ files (which is often
        down).  Every file is checked against ``MNIST_SHA256`` whatever
        its source.
    progress
        Show a progress bar while downloading.

    Returns
    -------
    Splits
        ``train`` (60,000 images, ``"mnist-train"``) and ``test`` (10,000,
        ``"mnist-test"``); images are float32 of shape (N, 1, 28, 28) in
        [0, 1], labels int64 digits 0-9.

    Raises
    ------
    FileNotFoundError
        If a file is missing and ``download`` is false.
    vaelib.data.download.ChecksumError
        If a file does not have the expected SHA-256.
    ValueError
        If a file is not a valid IDX file of the expected shape.
    """
    return _load_idx_dataset("MNIST", "mnist", MNIST_SHA256, MNIST_URL, root, download, mirror, progress)


def load_fashion_mnist(
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    mirror: str | None = None,
    progress: bool = True,
) -> Splits:
    """Load Fashion-MNIST, Zalando's 28 x 28 grey images of ten kinds of clothing.

    Parameters
    ----------
    root
        Directory holding the four ``*-ubyte.gz`` files.  ``None`` means
        ``default_cache_dir() / "fashion_mnist"``.
    download
        Download missing files (and replace files whose checksum is wrong).
        Without it a missing file raises :class:`FileNotFoundError`.
    mirror
        Base URL to download from instead of ``FASHION_MNIST_URL``.  Every
        file is checked against ``FASHION_MNIST_SHA256`` whatever its source.
    progress
        Show a progress bar while downloading.

    Returns
    -------
    Splits
        ``train`` (60,000 images, ``"fashion-mnist-train"``) and ``test``
        (10,000, ``"fashion-mnist-test"``); images are float32 of shape
        (N, 1, 28, 28) in [0, 1], labels int64 classes 0-9.

    Raises
    ------
    FileNotFoundError
        If a file is missing and ``download`` is false.
    vaelib.data.download.ChecksumError
        If a file does not have the expected SHA-256.
    ValueError
        If a file is not a valid IDX file of the expected shape.
    """
    return _load_idx_dataset(
        "Fashion-MNIST", "fashion_mnist", FASHION_MNIST_SHA256, FASHION_MNIST_URL, root, download, mirror, progress
    )
