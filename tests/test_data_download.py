"""Downloads against a local HTTP server: success, corruption, truncation, HTTP errors, interrupts."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import os
import socket
import struct
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from vaelib.data import cifar, download, mnist
from vaelib.data.download import ChecksumError, DownloadError, fetch, verify_sha256

PAYLOAD = bytes(range(256)) * 64 + b"vaelib"
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files; under ``/truncated/`` it announces more bytes than it sends, then hangs up."""

    def do_GET(self) -> None:
        if self.path.startswith("/truncated/"):
            body = (Path(self.directory) / self.path.removeprefix("/truncated/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # keep the test output clean
        pass


@dataclass
class Server:
    url: str
    root: Path

    def put(self, name: str, data: bytes) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return f"{self.url}/{name}"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    for variable in list(os.environ):
        if variable.lower() in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}:
            monkeypatch.delenv(variable)
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Server(url=f"http://127.0.0.1:{httpd.server_address[1]}", root=root)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def contents(directory: Path) -> list[str]:
    """Every entry under ``directory`` (hidden temporary files included)."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")) if directory.exists() else []


# --------------------------------------------------------------------------- fetch


@pytest.mark.parametrize("progress", [False, True])
def test_good_download_lands_in_place(server: Server, cache: Path, progress: bool) -> None:
    url = server.put("blob.bin", PAYLOAD)
    dest = cache / "nested" / "blob.bin"

    assert fetch(url, PAYLOAD_SHA, dest, progress=progress) == dest

    assert dest.read_bytes() == PAYLOAD
    assert contents(cache) == ["nested", "nested/blob.bin"]


def test_corrupt_download_raises_and_leaves_nothing(server: Server, cache: Path) -> None:
    served = PAYLOAD[:-1] + b"X"
    url = server.put("blob.bin", served)

    with pytest.raises(ChecksumError) as info:
        fetch(url, PAYLOAD_SHA, cache / "blob.bin", progress=False)

    message = str(info.value)
    assert "blob.bin" in message
    assert PAYLOAD_SHA in message
    assert hashlib.sha256(served).hexdigest() in message
    assert contents(cache) == []


def test_truncated_response_raises_and_leaves_nothing(server: Server, cache: Path) -> None:
    server.put("blob.bin", PAYLOAD)
    url = f"{server.url}/truncated/blob.bin"

    with pytest.raises(DownloadError, match="incomplete") as info:
        fetch(url, PAYLOAD_SHA, cache / "blob.bin", progress=False)

    message = str(info.value)
    assert url in message
    assert f"announced {len(PAYLOAD) + 1000} bytes" in message
    assert contents(cache) == []


def test_http_404_names_the_url(server: Server, cache: Path) -> None:
    url = f"{server.url}/no/such/file.gz"
    with pytest.raises(DownloadError, match="404") as info:
        fetch(url, PAYLOAD_SHA, cache / "file.gz", progress=False)
    assert url in str(info.value)
    assert contents(cache) == []


def test_unreachable_host_is_a_download_error(server: Server, cache: Path) -> None:
    # A port that was just free: nothing listens there.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/blob.bin"
    with pytest.raises(DownloadError, match=f"127.0.0.1:{port}"):
        fetch(url, PAYLOAD_SHA, cache / "blob.bin", progress=False, timeout=5)
    assert contents(cache) == []


def test_keyboard_interrupt_removes_the_partial_file(
    server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.put("blob.bin", PAYLOAD)
    seen: list[Path] = []

    def interrupted(response, out, *args):
        out.write(PAYLOAD[:100])
        out.flush()
        seen.append(Path(out.name))
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "_stream", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch(url, PAYLOAD_SHA, cache / "blob.bin", progress=False)

    assert len(seen) == 1 and seen[0].parent == cache  # the partial file was in the cache directory ...
    assert contents(cache) == []  # ... and is gone


def test_verified_file_is_not_downloaded_again(server: Server, cache: Path) -> None:
    dest = cache / "blob.bin"
    cache.mkdir()
    dest.write_bytes(PAYLOAD)
    # The URL would fail with 404, so success proves that no request was made.
    assert fetch(f"{server.url}/missing.bin", PAYLOAD_SHA, dest, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD


def test_cached_file_with_bad_checksum_is_downloaded_again(server: Server, cache: Path) -> None:
    url = server.put("blob.bin", PAYLOAD)
    dest = cache / "blob.bin"
    cache.mkdir()
    dest.write_bytes(b"stale copy")

    with pytest.warns(RuntimeWarning, match="downloading it again"):
        fetch(url, PAYLOAD_SHA, dest, progress=False)

    assert dest.read_bytes() == PAYLOAD
    assert contents(cache) == ["blob.bin"]


def test_failed_redownload_keeps_the_old_file(server: Server, cache: Path) -> None:
    dest = cache / "blob.bin"
    cache.mkdir()
    dest.write_bytes(b"stale copy")
    with pytest.warns(RuntimeWarning), pytest.raises(DownloadError, match="404"):
        fetch(f"{server.url}/missing.bin", PAYLOAD_SHA, dest, progress=False)
    assert dest.read_bytes() == b"stale copy"
    assert contents(cache) == ["blob.bin"]


def test_fetch_rejects_malformed_arguments(cache: Path) -> None:
    with pytest.raises(ValueError, match="64 hexadecimal"):
        fetch("http://127.0.0.1/x", "abc", cache / "x", progress=False)
    with pytest.raises(ValueError, match="url must start with"):
        fetch("ftp://127.0.0.1/x", PAYLOAD_SHA, cache / "x", progress=False)


def test_verify_sha256(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(PAYLOAD)
    verify_sha256(path, PAYLOAD_SHA.upper())  # case does not matter
    wrong = "1" * 64
    with pytest.raises(ChecksumError) as info:
        verify_sha256(path, wrong)
    message = str(info.value)
    assert "blob.bin" in message and wrong in message and PAYLOAD_SHA in message
    with pytest.raises(FileNotFoundError):
        verify_sha256(tmp_path / "absent.bin", PAYLOAD_SHA)


# --------------------------------------------------------------------------- loaders with download=True


def idx_gz(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.tobytes())


def test_mnist_download_from_mirror_then_load(server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, size=(4, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.array([5, 0, 4, 1], dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, size=(2, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.array([7, 2], dtype=np.uint8),
    }
    for name, array in arrays.items():
        data = idx_gz(array)
        server.put(f"mirror/{name}", data)
        monkeypatch.setitem(mnist.MNIST_SHA256, name, hashlib.sha256(data).hexdigest())

    splits = mnist.load_mnist(cache, download=True, mirror=f"{server.url}/mirror", progress=False)

    assert contents(cache) == sorted(arrays)
    assert splits.train.images.shape == (4, 1, 28, 28)
    assert splits.train.labels.tolist() == [5, 0, 4, 1]
    assert splits.test.labels.tolist() == [7, 2]
    expected = arrays["t10k-images-idx3-ubyte.gz"] / 255.0
    np.testing.assert_allclose(splits.test.images[:, 0].numpy(), expected, rtol=0, atol=1e-7)

    # A second call finds everything in place, even with the server gone from the URL.
    again = mnist.load_mnist(cache, download=True, mirror=f"{server.url}/elsewhere", progress=False)
    assert again.train.labels.tolist() == [5, 0, 4, 1]


def test_fashion_mnist_download_of_corrupt_file_leaves_no_trace(server: Server, cache: Path) -> None:
    for name in mnist.FASHION_MNIST_SHA256:
        server.put(f"mirror/{name}", b"not what was promised")
    with pytest.raises(ChecksumError, match="train-images-idx3-ubyte.gz"):
        mnist.load_fashion_mnist(cache, download=True, mirror=f"{server.url}/mirror/", progress=False)
    assert contents(cache) == []


def test_cifar10_download_from_mirror(server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = {}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for index, name in enumerate([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]):
            record = bytes([index]) + bytes([index * 40]) * 3072
            records[name] = record
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(record)
            archive.addfile(info, io.BytesIO(record))
    data = buffer.getvalue()
    server.put("kriz/cifar-10-binary.tar.gz", data)
    monkeypatch.setitem(cifar.CIFAR10_SHA256, "cifar-10-binary.tar.gz", hashlib.sha256(data).hexdigest())

    splits = cifar.load_cifar10(cache, download=True, mirror=f"{server.url}/kriz/", progress=False)

    assert contents(cache) == ["cifar-10-binary.tar.gz"]
    assert splits.train.labels.tolist() == [0, 1, 2, 3, 4]
    assert splits.test.labels.tolist() == [5]
    assert splits.train.images.shape == (5, 3, 32, 32)
    assert float(splits.train.images[3].max()) == pytest.approx(120 / 255)
    assert float(splits.test.images.min()) == pytest.approx(200 / 255)
