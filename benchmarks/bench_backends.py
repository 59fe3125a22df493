"""ONNX Runtime (CPU EP) vs PyTorch eager (CPU) on the same networks, in one run, as a ratio.

Usage: python benchmarks/bench_backends.py [--networks sg3r_64,sg3r_256] [--batch 1,4] [--iters 5]
Prints a table and writes benchmarks/results/bench_backends.json. Both backends get the same number
of threads. Timings on a shared machine are contaminated: re-run on a quiet one before quoting.
The figures decide `CPU_AUTO_BACKEND` in runtime/registry.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from refdata import reference_file  # noqa: E402

from sg3rt.runtime.bench import bench_backends  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bench_backends.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="sg3r_64,sg3r_256", help="reference networks (tests/data)")
    parser.add_argument("--batch", default="1,4", help="comma-separated batch sizes")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="threads for both backends")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("SG3RT_CACHE_DIR", tempfile.mkdtemp(prefix="sg3rt-bench-"))
    batches = [int(b) for b in args.batch.split(",")]
    rows = []
    print(f"{'network':<10} {'batch':>5} {'torch f/s':>10} {'ort f/s':>10} {'ort/torch':>9} {'torch MiB':>9} {'ort MiB':>8}")
    for name in args.networks.split(","):
        path = reference_file(f"{name}.pkl")
        by = {}
        for backend in ("torch", "onnxruntime"):
            options = {"threads": args.threads} if backend == "onnxruntime" else {}
            for r in bench_backends(path, [backend], batches, device="cpu", iters=args.iters, warmup=args.warmup,
                                    **options):
                by[backend, r.batch] = r
        for b in batches:
            t, o = by["torch", b], by["onnxruntime", b]
            ratio = o.frames_per_s / t.frames_per_s
            print(f"{name:<10} {b:>5} {t.frames_per_s:>10.2f} {o.frames_per_s:>10.2f} {ratio:>8.2f}x "
                  f"{t.peak_mem_mib:>9.0f} {o.peak_mem_mib:>8.0f}")
            rows.append({"network": name, "batch": b, "ort_over_torch": ratio,
                         "torch": t.to_json(), "onnxruntime": o.to_json()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"cpu": platform.processor() or platform.machine(), "threads": args.threads, "torch": torch.__version__,
            "iters": args.iters, "note": "frames() incl. uint8 conversion; median of iters"}
    import onnxruntime

    meta["onnxruntime"] = onnxruntime.__version__
    args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
