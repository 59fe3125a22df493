"""Mean frame-to-frame global shift of a cubic latent walk, with and without --stabilize.

    python benchmarks/bench_stabilize.py [--network sg3r_64] [--seeds 0-3] [--frames 48] [--psi 1]

The shift is measured by phase correlation (sg3rt.analysis.shift). A quality figure, not a timing.
Writes benchmarks/results/stabilize_<network>.json and prints a table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from refdata import reference_file  # noqa: E402

from sg3rt import __version__  # noqa: E402
from sg3rt.analysis.shift import frame_shifts  # noqa: E402
from sg3rt.animate import Animation, PathSpec, frame_batches, parse_seeds  # noqa: E402
from sg3rt.fileio import write_json  # noqa: E402
from sg3rt.runtime import open_generator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default="sg3r_64", help="reference network name (tests/data) or a file")
    ap.add_argument("--seeds", default="0-3")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--psi", type=float, default=1.0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    path = Path(args.network) if Path(args.network).is_file() else reference_file(f"{args.network}.pkl")
    rows = []
    with open_generator(path, backend="torch", device=args.device) as rt:
        for stab in (False, True):
            spec = PathSpec("cubic", loop=True, psi=args.psi, stabilize=stab)
            anim = Animation(rt, parse_seeds(args.seeds), spec, 30.0, frames=args.frames)
            frames = np.concatenate(list(frame_batches(rt, anim, 16)))
            lengths = np.linalg.norm(frame_shifts(np.concatenate([frames, frames[:1]])), axis=1)  # incl. the seam
            rows.append({"stabilize": stab, "mean_shift_px": float(lengths.mean()),
                         "median_shift_px": float(np.median(lengths)), "max_shift_px": float(lengths.max())})
    print(f"{'stabilize':<10} {'mean px':>8} {'median px':>10} {'max px':>8}")
    for r in rows:
        print(f"{str(r['stabilize']):<10} {r['mean_shift_px']:>8.3f} {r['median_shift_px']:>10.3f} {r['max_shift_px']:>8.3f}")
    out = HERE / "results" / f"stabilize_{Path(args.network).stem}.json"
    write_json(out, {"version": __version__, "network": str(args.network), "seeds": args.seeds, "frames": args.frames,
                     "psi": args.psi, "path": "cubic loop", "rows": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
