from __future__ import annotations


import numpy as np
import pytest
import torch

from vaelib import data


@pytest.fixture(scope="module")
def splits() -> data.Splits:
    return data.load_mnist_5k()


def test_shapes_range_and_balance(splits: data.Splits) -> None:
    assert splits.train.images.shape == (4000, 1, 28, 28)
    assert splits.test.images.shape == (1000, 1, 28, 28)
    for part in (splits.train, splits.test):
        assert part.images.dtype == torch.float32
        assert part.images.min().item() == 0.0
        assert part.images.max().item() == 1.0
        assert part.labels.dtype == torch.int64
    assert torch.bincount(splits.train.labels).tolist() == [400] * 10
    assert torch.bincount(splits.test.labels).tolist() == [100] * 10


def test_split_is_disjoint_and_covers_the_file(splits: data.Splits) -> None:
    with np.load(data.mnist_5k_path()) as archive:
        pixels, labels = archive["pixels"].astype(np.int64), archive["labels"]
    raw = {row.tobytes(): int(label) for row, label in zip(pixels, labels)}
    seen = []
    for part in (splits.train, splits.test):
        as_bytes = (part.images * 255).round().to(torch.int64).flatten(1).numpy()
        for row, label in zip(as_bytes, part.labels.tolist()):
            assert raw[row.tobytes()] == label
            seen.append(row.tobytes())
    assert len(seen) == 5000
    # duplicates in the source file would make the split overlap; check both sides agree
    assert len(set(seen)) == len(raw)


def test_the_shipped_file_is_checked_against_its_sha256(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vaelib.data import embedded

    bad = tmp_path / "mnist_5k.npz"
    bad.write_bytes(data.mnist_5k_path().read_bytes()[:-1] + b"x")
    monkeypatch.setattr(embedded, "mnist_5k_path", lambda: bad)
    embedded._read.cache_clear()
    try:
        with pytest.raises(ValueError, match="mnist-5k: mnist_5k.npz has SHA-256"):
            embedded._read()
    finally:
        embedded._read.cache_clear()
    assert (data.mnist_5k_path().parent / "MNIST_5K_LICENSE.txt").is_file()


def test_split_is_fixed() -> None:
    a, b = data.load_mnist_5k(), data.load_mnist_5k()
    assert torch.equal(a.train.images, b.train.images)
    assert torch.equal(a.test.labels, b.test.labels)
    # the pixels are an exact k/255 grid
    k = a.train.images * 255
    assert torch.equal(k, k.round())


def test_load_by_name_and_unknown_name() -> None:
    assert data.load("mnist-5k").train.image_shape == (1, 28, 28)
    with pytest.raises(ValueError, match="unknown dataset 'mnist-6k'.*mnist-5k"):
        data.load("mnist-6k")


def test_imageset_rejects_wrong_layout() -> None:
    with pytest.raises(ValueError, match="shape"):
        data.ImageSet(torch.zeros(3, 28, 28), torch.zeros(3, dtype=torch.int64), "bad")
    with pytest.raises(ValueError, match="float32"):
        data.ImageSet(torch.zeros(3, 1, 2, 2, dtype=torch.float64), torch.zeros(3, dtype=torch.int64), "bad")
    with pytest.raises(ValueError, match="labels"):
        data.ImageSet(torch.zeros(3, 1, 2, 2), torch.zeros(2, dtype=torch.int64), "bad")


def test_photo_patches_are_a_fixed_disjoint_split_of_16x16_rgb_patches() -> None:
    pytest.importorskip("sklearn")
    from vaelib.data import load

    splits = load("photo-patches")
    assert splits.train.images.shape == (1820, 3, 16, 16) and splits.test.images.shape == (260, 3, 16, 16)
    assert 0.0 <= splits.train.images.min() and splits.train.images.max() <= 1.0
    # 2 photographs of 427 x 640 cut into 26 x 40 patches each, one in eight held out, the same every time
    assert len(splits.train) + len(splits.test) == 2 * 26 * 40
    again = data.load_photo_patches.__wrapped__(16)
    assert torch.equal(again.test.images, splits.test.images)
    with pytest.raises(ValueError, match="photo-patches: size"):
        load("photo-patches", size=1)


def test_an_image_set_is_a_torch_dataset(splits: data.Splits) -> None:
    from torch.utils.data import DataLoader

    images, labels = next(iter(DataLoader(splits.train, batch_size=5)))
    assert images.shape == (5, 1, 28, 28) and torch.equal(labels, splits.train.labels[:5])
    assert torch.equal(splits.test[3][0], splits.test.images[3])
