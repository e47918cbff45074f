"""The digit classifier behind the book's Frechet distance is the same function whatever the thread count."""

from __future__ import annotations

import torch

from vaelib.classifier import train_classifier
from vaelib.data import ImageSet, load_mnist_5k


def test_weights_do_not_depend_on_the_thread_count() -> None:
    train = load_mnist_5k().train
    small = ImageSet(train.images[:512], train.labels[:512], "first 512")
    weights = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        weights[threads] = train_classifier(small, epochs=1).state_dict()
        assert torch.get_num_threads() == threads  # restored
    assert all(torch.equal(weights[1][k], weights[2][k]) for k in weights[1])


def test_training_under_no_grad_gives_the_same_weights() -> None:
    """A probe that scores a model under no_grad may be the first to need the classifier."""
    train = load_mnist_5k().train
    small = ImageSet(train.images[:256], train.labels[:256], "first 256")
    plain = train_classifier(small, epochs=1).state_dict()
    with torch.no_grad():
        inside = train_classifier(small, epochs=1).state_dict()
    assert all(torch.equal(plain[k], inside[k]) for k in plain)
