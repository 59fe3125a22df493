"""The README's edit-sweep strip: SeFa directions 0 and 1 of the embedded default network, seed 7.

Usage: python benchmarks/docs_edit_strip.py [--out docs/edit_sweep.png]
Each row is one direction at amounts -6, -4, -2, 0, 2, 4, 6 (the middle image is the unedited seed),
made with the same calls as `sg3rt directions` and `sg3rt image --edit`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from sg3rt.animate import Edit, compute_directions, still_batches
from sg3rt.fileio import write_png
from sg3rt.networks.default import default_generator
from sg3rt.runtime import open_generator

AMOUNTS = (-6, -4, -2, 0, 2, 4, 6)  # edit amounts along each row
DIRECTIONS = (0, 1)  # SeFa directions, strongest first
SEED = 7  # the seed every image starts from


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "edit_sweep.png")
    args = ap.parse_args()
    G = default_generator()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, open_generator(G, backend="torch", device="cpu") as rt:
        dirs = Path(tmp) / "dirs.npz"
        compute_directions(G, "sefa", None, max(DIRECTIONS) + 1).save(dirs)
        for k in DIRECTIONS:
            edits = [Edit.parse(f"{dirs}:{k}:{a}") for a in AMOUNTS]
            images = [next(still_batches(rt, [SEED], edits=(e,)))[2][0] for e in edits]  # [H, W, 3] each
            rows.append(np.concatenate(images, axis=1))
    write_png(args.out, np.concatenate(rows, axis=0))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
