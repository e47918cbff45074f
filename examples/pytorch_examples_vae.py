"""The VAE of pytorch/examples (``vae/main.py``) trained by vaelib: its model, vaelib's data, head and trainer.

The model keeps the example's layers: 784-400-20 with ReLU, a Gaussian posterior and a Bernoulli
decoder. Only what the VAE protocol (:mod:`vaelib.protocol`) asks for differs from the example:

* ``decode`` returns the Bernoulli logits. The example applies a sigmoid and then binary cross-entropy;
  vaelib's Bernoulli head takes the logits, which is the same likelihood, Eq. (eq-bern-bce), without
  the logarithm of a rounded sigmoid.
* The model names its likelihood (``head``) and its ``latent_dim``.

The example's loss function and its training and test loops are replaced by :func:`vaelib.train.train`,
which reports the test ELBO per epoch; the embedded 5,000 digits need no download. Run it with
``python examples/pytorch_examples_vae.py --epochs 10``.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.nn import functional as F

from vaelib import data, likelihoods
from vaelib.bounds import iwae_bound
from vaelib.train import train


class ExampleVAE(nn.Module):
    """The network of pytorch/examples' VAE, with the two attributes of the protocol."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)
        self.head = likelihoods.get("bernoulli")
        self.latent_dim = 20

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h1 = F.relu(self.fc1(x.flatten(1)))
        return self.fc21(h1), self.fc22(h1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc4(F.relu(self.fc3(z))).view(-1, 1, 28, 28)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="train on the first LIMIT digits only")
    args = parser.parse_args(argv)
    splits = data.load("mnist-5k")
    images = splits.train.images[: args.limit] if args.limit else splits.train.images
    torch.manual_seed(args.seed)
    model = ExampleVAE()
    history = train(model, images, epochs=args.epochs, batch_size=args.batch_size, lr=1e-3, seed=args.seed,
                    device="cpu", test=splits.test, progress=False)
    with torch.no_grad():
        iwae = iwae_bound(model.eval(), splits.test.images[:200], 100, torch.Generator().manual_seed(0)).mean().item()
    result = {"train_elbo": history.elbo[-1], "test_elbo": history.test_elbo[-1], "test_iwae_100": iwae}
    print(f"after {args.epochs} epochs: training ELBO {result['train_elbo']:.2f}, test ELBO {result['test_elbo']:.2f}, "
          f"IWAE-100 on 200 test digits {iwae:.2f} nats/image")
    return result


if __name__ == "__main__":
    main()
