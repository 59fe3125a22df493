"""Equivariance per backend and texture sticking on the reference networks: the README's tables.

    python benchmarks/bench_eq.py [--networks sg3t_64_cond,sg3r_64,sg3r_256] [--backends torch,onnxruntime,tensorrt]
                                  [--samples 64] [--frames 64] [--device auto]

For each StyleGAN3 network: EQ-T, EQ-T_frac, EQ-R (dB) per backend and precision, with the difference
from torch fp32 and the parity of plain images (sg3rt.analysis.backends). For every network including
StyleGAN2: the texture-sticking score of a latent-walk average. These are quality figures, not timings,
so a busy machine does not change them; the device does (CPU vs CUDA rounding), so it is recorded.
Writes benchmarks/results/eq_<device>.json, eq_<device>.md (markdown tables), eq_<device>.png (bar chart)
and sticking_<network>.png.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from refdata import reference_file  # noqa: E402

from sg3rt import __version__  # noqa: E402
from sg3rt.analysis.backends import equivariance_by_backend, parse_backends  # noqa: E402
from sg3rt.analysis.equivariance import LABELS, METRICS  # noqa: E402
from sg3rt.analysis.plot import bar_chart  # noqa: E402
from sg3rt.analysis.report import eq_markdown_header, eq_markdown_row  # noqa: E402
from sg3rt.analysis.sticking import side_by_side, texture_sticking  # noqa: E402
from sg3rt.fileio import json_safe, write_json, write_png, write_text  # noqa: E402
from sg3rt.runtime import open_generator  # noqa: E402
from sg3rt.runtime.registry import resolve_device  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", default="sg3t_64_cond,sg3r_64,sg3r_256")
    ap.add_argument("--sticking-networks", default="sg2_64,sg3t_64_cond,sg3r_64")
    ap.add_argument("--backends", default="torch,onnxruntime,tensorrt")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = str(resolve_device(args.device))
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    tag = device.split(":")[0]

    eq_rows, md = [], eq_markdown_header()
    for name in args.networks.split(","):
        t0 = time.perf_counter()
        for row in equivariance_by_backend(reference_file(f"{name}.pkl"), parse_backends(args.backends), device=device,
                                           samples=args.samples, seed=args.seed):
            eq_rows.append({"network": name, **json_safe(row.to_dict())})
            md.append(eq_markdown_row(name, row))
            print(md[-1], flush=True)
        print(f"  ({time.perf_counter() - t0:.0f} s)")

    md += ["", "| network | kind | sticking score | frames |", "| --- | --- | --- | --- |"]
    sticking = []
    for name in args.sticking_networks.split(","):
        with open_generator(reference_file(f"{name}.pkl"), backend="torch", device=device) as rt:
            result = texture_sticking(rt, frames=args.frames, seed=args.seed, class_idx=0 if rt.c_dim else None)
            kind = rt.kind
        write_png(out_dir / f"sticking_{name}.png", side_by_side(result))
        sticking.append({"network": name, "kind": kind, **result.to_dict()})
        md.append(f"| {name} | {kind} | {result.score:.3f} | {result.frames} |")
        print(f"sticking {name:<13} {kind:<12} {result.score:.3f}")

    ok = [r for r in eq_rows if r["status"] == "ok"]
    series = {f"{r['network']} {r['backend']} {r['precision']}": [r["db"][m] if r["db"][m] is not None else math.inf
                                                                 for m in METRICS] for r in ok}
    write_png(out_dir / f"eq_{tag}.png", bar_chart([LABELS[m] for m in METRICS], series, title="equivariance"))
    write_text(out_dir / f"eq_{tag}.md", "\n".join(md) + "\n")
    payload = {"sg3rt_version": __version__, "device": device, "machine": platform.platform(),
               "samples": args.samples, "frames": args.frames, "seed": args.seed,
               "equivariance": eq_rows, "sticking": sticking}
    write_json(out_dir / f"eq_{tag}.json", payload)
    print("\n".join(md))
    print(f"wrote {out_dir}/eq_{tag}.json, .md, .png and sticking_*.png")


if __name__ == "__main__":
    main()
