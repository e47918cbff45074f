"""Parsing of IDX files and of the CIFAR-10 binary format, on tiny hand-made files."""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from vaelib.data import cifar, mnist
from vaelib.data.download import ChecksumError, default_cache_dir

IDX_CODES = {
    np.dtype(name): code for name, code in [("u1", 8), ("i1", 9), ("i2", 11), ("i4", 12), ("f4", 13), ("f8", 14)]
}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` as an IDX file, written out by hand from the format description."""
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path: Path, data: bytes, *, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- read_idx


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_read_idx_uint8_round_trip(tmp_path: Path, gz: bool) -> None:
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    path = write(tmp_path / "images.idx", idx_bytes(array), gz=gz)

    result = mnist.read_idx(path)

    assert result.dtype == np.uint8
    assert result.shape == (4, 28, 28)
    np.testing.assert_array_equal(result, array)
    assert result.flags.writeable


@pytest.mark.parametrize("dtype", ["i1", "i2", "i4", "f4", "f8"])
def test_read_idx_multibyte_types_come_back_in_native_order(tmp_path: Path, dtype: str) -> None:
    array = (np.arange(-6, 6).reshape(3, 4) * 7).astype(dtype)
    path = write(tmp_path / "values.idx", idx_bytes(array))

    result = mnist.read_idx(path)

    assert result.dtype == np.dtype(dtype)
    assert result.dtype.isnative
    np.testing.assert_array_equal(result, array)


def test_read_idx_one_dimensional_labels(tmp_path: Path) -> None:
    labels = np.array([3, 1, 4, 1, 5, 9], dtype=np.uint8)
    path = write(tmp_path / "labels.gz", idx_bytes(labels), gz=True)
    np.testing.assert_array_equal(mnist.read_idx(path), labels)


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_read_idx_bad_magic_names_file(tmp_path: Path, gz: bool) -> None:
    good = idx_bytes(np.zeros((2, 3), dtype=np.uint8))
    path = write(tmp_path / "bad-magic.idx", b"\x01" + good[1:], gz=gz)
    with pytest.raises(ValueError, match="bad-magic.idx") as info:
        mnist.read_idx(path)
    assert "magic" in str(info.value)


def test_read_idx_unknown_type_code(tmp_path: Path) -> None:
    good = idx_bytes(np.zeros((2, 3), dtype=np.uint8))
    path = write(tmp_path / "bad-type.idx", good[:2] + b"\x0a" + good[3:])
    with pytest.raises(ValueError, match=r"bad-type\.idx.*type code 0x0A"):
        mnist.read_idx(path)


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
@pytest.mark.parametrize("change", [-1, 1], ids=["short", "long"])
def test_read_idx_wrong_byte_count_names_file(tmp_path: Path, gz: bool, change: int) -> None:
    good = idx_bytes(np.zeros((2, 5, 5), dtype=np.uint8))
    data = good[:change] if change < 0 else good + b"\x00" * change
    path = write(tmp_path / "wrong-count.idx", data, gz=gz)
    with pytest.raises(ValueError, match="wrong-count.idx") as info:
        mnist.read_idx(path)
    message = str(info.value)
    assert "(2, 5, 5)" in message
    assert f"holds {50 + change} data bytes" in message


def test_read_idx_truncated_header(tmp_path: Path) -> None:
    path = write(tmp_path / "short-header.idx", bytes([0, 0, 0x08, 3]) + struct.pack(">I", 2))
    with pytest.raises(ValueError, match=r"short-header\.idx.*3 dimensions"):
        mnist.read_idx(path)


def test_read_idx_corrupt_gzip(tmp_path: Path) -> None:
    compressed = gzip.compress(idx_bytes(np.zeros((4, 4), dtype=np.uint8)))
    path = write(tmp_path / "broken.gz", compressed[: len(compressed) // 2])
    with pytest.raises(ValueError, match=r"broken\.gz.*gzip"):
        mnist.read_idx(path)


# --------------------------------------------------------------------------- MNIST / Fashion-MNIST

LOADERS = [
    pytest.param(mnist.load_mnist, mnist.MNIST_SHA256, "mnist", id="mnist"),
    pytest.param(mnist.load_fashion_mnist, mnist.FASHION_MNIST_SHA256, "fashion-mnist", id="fashion"),
]


def make_idx_dataset(directory: Path, table: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    """Write a 5-train/3-test IDX dataset into ``directory`` and point ``table`` at its digests."""
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.array([7, 0, 9, 2, 2], dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.array([1, 8, 0], dtype=np.uint8),
    }
    arrays["train-images-idx3-ubyte.gz"][0, 0, :2] = (0, 255)  # both ends of the range
    directory.mkdir(parents=True, exist_ok=True)
    assert set(arrays) == set(table)
    for name, array in arrays.items():
        path = write(directory / name, idx_bytes(array), gz=True)
        monkeypatch.setitem(table, name, sha256(path))
    return arrays


@pytest.mark.parametrize(("load", "table", "name"), LOADERS)
def test_load_idx_dataset_from_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load, table, name) -> None:
    arrays = make_idx_dataset(tmp_path, table, monkeypatch)

    splits = load(tmp_path)

    for split, prefix, count in (("train", "train", 5), ("test", "t10k", 3)):
        images = arrays[f"{prefix}-images-idx3-ubyte.gz"]
        labels = arrays[f"{prefix}-labels-idx1-ubyte.gz"]
        got = getattr(splits, split)
        assert got.name == f"{name}-{split}"
        assert got.images.shape == (count, 1, 28, 28)
        assert got.images.dtype == torch.float32
        assert got.labels.dtype == torch.int64
        assert torch.equal(got.labels, torch.tensor(labels.tolist(), dtype=torch.int64))
        expected = torch.tensor(images.tolist(), dtype=torch.float64).unsqueeze(1) / 255.0
        torch.testing.assert_close(got.images.double(), expected, rtol=0, atol=1e-7)
    assert float(splits.train.images.min()) == 0.0
    assert float(splits.train.images.max()) == 1.0


@pytest.mark.parametrize(("load", "table", "name"), LOADERS)
def test_missing_files_without_download(tmp_path: Path, load, table, name) -> None:
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"present")
    with pytest.raises(FileNotFoundError) as info:
        load(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "download=True" in message
    for missing in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert missing in message
    assert "'train-images-idx3-ubyte.gz'" not in message


def test_default_root_comes_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAELIB_DATA", str(tmp_path))
    assert default_cache_dir() == tmp_path
    make_idx_dataset(tmp_path / "mnist", mnist.MNIST_SHA256, monkeypatch)
    assert len(mnist.load_mnist().train) == 5
    with pytest.raises(FileNotFoundError, match="fashion_mnist"):
        mnist.load_fashion_mnist()


def test_default_cache_dir_without_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAELIB_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "vaelib"


def test_present_file_with_wrong_checksum_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_idx_dataset(tmp_path, mnist.MNIST_SHA256, monkeypatch)
    expected = "0" * 64
    monkeypatch.setitem(mnist.MNIST_SHA256, "t10k-labels-idx1-ubyte.gz", expected)
    actual = sha256(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(ChecksumError) as info:
        mnist.load_mnist(tmp_path)
    message = str(info.value)
    for part in ("MNIST", "t10k-labels-idx1-ubyte.gz", expected, actual, "download=True"):
        assert part in message


def test_labels_out_of_range_are_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_idx_dataset(tmp_path, mnist.MNIST_SHA256, monkeypatch)
    path = write(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.array([1, 10, 0], dtype=np.uint8)), gz=True)
    monkeypatch.setitem(mnist.MNIST_SHA256, path.name, sha256(path))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz.*label 10"):
        mnist.load_mnist(tmp_path)


def test_image_and_label_counts_must_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_idx_dataset(tmp_path, mnist.MNIST_SHA256, monkeypatch)
    path = write(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.array([1, 2], dtype=np.uint8)), gz=True)
    monkeypatch.setitem(mnist.MNIST_SHA256, path.name, sha256(path))
    with pytest.raises(ValueError, match="2 labels but"):
        mnist.load_mnist(tmp_path)


def test_invalid_mirror_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mirror"):
        mnist.load_mnist(tmp_path, download=True, mirror="ftp://example.invalid/mnist/")


# --------------------------------------------------------------------------- CIFAR-10

BATCH_DIR = "cifar-10-batches-bin"
BATCH_NAMES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]


def make_batches() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Small batches (2 records per training batch, 3 test records) with known content."""
    rng = np.random.default_rng(2)
    batches = {}
    for index, name in enumerate(BATCH_NAMES):
        count = 3 if name == "test_batch.bin" else 2
        labels = np.array([(index + 3 * k) % 10 for k in range(count)], dtype=np.uint8)
        images = rng.integers(0, 256, size=(count, 3, 32, 32), dtype=np.uint8)
        batches[name] = (images, labels)
    # Record 0 of the first batch has flat channels, so a channel mix-up would show.
    batches["data_batch_1.bin"][0][0] = np.stack([np.full((32, 32), value, dtype=np.uint8) for value in (0, 128, 255)])
    return batches


def batch_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    out = bytearray()
    for image, label in zip(images, labels):
        out.append(int(label))
        for channel in image:  # red plane, green plane, blue plane, each row by row
            out += channel.tobytes()
    return bytes(out)


def add_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def make_cifar_archive(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        add_member(archive, "cifar-10-batches-bin/batches.meta.txt", b"airplane\nautomobile\n")
        for name, data in members.items():
            add_member(archive, name, data)
    return path


def good_members(batches) -> dict[str, bytes]:
    return {f"cifar-10-batches-bin/{name}": batch_bytes(*batches[name]) for name in BATCH_NAMES}


def check_cifar(splits, batches) -> None:
    train_images = np.concatenate([batches[name][0] for name in BATCH_NAMES[:5]])
    train_labels = np.concatenate([batches[name][1] for name in BATCH_NAMES[:5]])
    for got, images, labels, name in (
        (splits.train, train_images, train_labels, "cifar10-train"),
        (splits.test, *batches["test_batch.bin"], "cifar10-test"),
    ):
        assert got.name == name
        assert got.images.shape == (len(labels), 3, 32, 32)
        assert got.images.dtype == torch.float32
        assert got.labels.dtype == torch.int64
        assert torch.equal(got.labels, torch.tensor(labels.tolist(), dtype=torch.int64))
        expected = torch.tensor(images.tolist(), dtype=torch.float64) / 255.0
        torch.testing.assert_close(got.images.double(), expected, rtol=0, atol=1e-7)
        assert 0.0 <= float(got.images.min()) and float(got.images.max()) <= 1.0
    first = splits.train.images[0]
    assert torch.all(first[0] == 0.0) and torch.all(first[2] == 1.0)
    assert torch.allclose(first[1], torch.full((32, 32), 128 / 255))


def test_load_cifar10_from_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batches = make_batches()
    archive = make_cifar_archive(tmp_path / "cifar-10-binary.tar.gz", good_members(batches))
    monkeypatch.setitem(cifar.CIFAR10_SHA256, archive.name, sha256(archive))

    splits = cifar.load_cifar10(tmp_path)

    check_cifar(splits, batches)
    assert sorted(p.name for p in tmp_path.iterdir()) == [archive.name]  # nothing was extracted


def test_load_cifar10_from_extracted_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batches = make_batches()
    directory = tmp_path / "cifar-10-batches-bin"
    directory.mkdir()
    for name in BATCH_NAMES:
        path = write(directory / name, batch_bytes(*batches[name]))
        monkeypatch.setitem(cifar.CIFAR10_BATCH_SHA256, name, sha256(path))

    check_cifar(cifar.load_cifar10(tmp_path), batches)

    monkeypatch.setitem(cifar.CIFAR10_BATCH_SHA256, "data_batch_3.bin", "f" * 64)
    with pytest.raises(ChecksumError, match="data_batch_3.bin"):
        cifar.load_cifar10(tmp_path)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda m: m.pop(f"{BATCH_DIR}/data_batch_4.bin"), f"lacks the members {BATCH_DIR}/data_batch_4.bin"),
        (lambda m: m.update({f"{BATCH_DIR}/test_batch.bin": b"\x01" * 3072}), r"test_batch\.bin.*3072 bytes"),
        (lambda m: m.update({f"{BATCH_DIR}/test_batch.bin": b"\x01" * 3073 * 10_001}), "between 1 and 10000"),
        (lambda m: m.update({f"{BATCH_DIR}/data_batch_2.bin": b"\x0a" + bytes(3072)}), r"_2\.bin has label 10"),
    ],
    ids=["missing-member", "partial-record", "too-many-records", "bad-label"],
)
def test_cifar10_rejects_malformed_archives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mutate, pattern) -> None:
    members = good_members(make_batches())
    mutate(members)
    archive = make_cifar_archive(tmp_path / "cifar-10-binary.tar.gz", members)
    monkeypatch.setitem(cifar.CIFAR10_SHA256, archive.name, sha256(archive))
    with pytest.raises(ValueError, match=pattern):
        cifar.load_cifar10(tmp_path)


def test_cifar10_rejects_non_regular_member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    members = good_members(make_batches())
    del members["cifar-10-batches-bin/test_batch.bin"]
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members.items():
            add_member(tar, name, data)
        link = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    monkeypatch.setitem(cifar.CIFAR10_SHA256, archive.name, sha256(archive))
    with pytest.raises(ValueError, match="not a regular file"):
        cifar.load_cifar10(tmp_path)


def test_cifar10_rejects_a_file_that_is_not_a_tarball(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = write(tmp_path / "cifar-10-binary.tar.gz", b"not a tar file at all", gz=True)
    monkeypatch.setitem(cifar.CIFAR10_SHA256, archive.name, sha256(archive))
    with pytest.raises(ValueError, match="not a readable tar.gz"):
        cifar.load_cifar10(tmp_path)


def test_cifar10_missing_without_download(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        cifar.load_cifar10(tmp_path)
    message = str(info.value)
    for part in ("CIFAR-10", "cifar-10-binary.tar.gz", "cifar-10-batches-bin", str(tmp_path), "download=True"):
        assert part in message


def test_cifar10_archive_with_wrong_checksum(tmp_path: Path) -> None:
    make_cifar_archive(tmp_path / "cifar-10-binary.tar.gz", good_members(make_batches()))
    with pytest.raises(ChecksumError, match=cifar.CIFAR10_SHA256["cifar-10-binary.tar.gz"]):
        cifar.load_cifar10(tmp_path)
