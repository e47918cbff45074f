"""Images/s of vaelib's Trainer against a plain DataLoader loop (pytorch/examples style), side by side.

    OMP_NUM_THREADS=2 python benchmarks/bench_trainer.py --size small          # CPU
    python benchmarks/bench_trainer.py --size full --device cuda --compile --bf16  # one GPU

Both sides train the same model with the same batch size, alternately, ``--repeats`` times; the
medians and their ratio are printed and, with ``--json FILE``, written to FILE.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vaelib.benchmark import add_arguments, run_from_args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--json", type=Path, default=None, help="also write the result to this file")
    args = parser.parse_args()
    result = run_from_args(args)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
