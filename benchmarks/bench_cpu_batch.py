"""PyTorch CPU: ms per image at batch 1 vs batch N, with and without keeping the allocator's memory.

Usage: python benchmarks/bench_cpu_batch.py [--network sg3r_256] [--batch 1,4] [--iters 5] [--repeats 2]
Every (batch, allocator setting) runs in its own process, `repeats` times interleaved; the table
quotes the median over all timed calls of all repeats, and page faults (minor) per image. Writes
benchmarks/results/cpu_batch.json. The synthesis runs as one call per batch (chunk = batch).
The machine is shared: the load average is recorded before and after, and CPU time (user + system, all
threads) per image is printed beside wall time: it is less disturbed by other jobs than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sg3rt.fileio import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "cpu_batch.json"


def child(network: str, batch: int, iters: int, warmup: int) -> None:
    """One process: time synthesis at `batch`, print one JSON line."""
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from refdata import reference_file

    from sg3rt.runtime import open_generator
    from sg3rt.runtime.cpu_allocator import keep_cpu_memory

    rt = open_generator(reference_file(f"{network}.pkl"), backend="torch", device="cpu")
    rt.chunk = batch  # the whole batch in one synthesis call
    gen = torch.Generator().manual_seed(0)
    ws = rt.mapping(torch.randn([batch, rt.G.z_dim], generator=gen), None, 0.7)
    times, cpu, faults = [], [], []
    for i in range(warmup + iters):
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        rt.synthesis(ws)
        dt, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
        if i >= warmup:
            times.append(dt * 1000 / batch)
            cpu.append((r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1000 / batch)
            faults.append((r1.ru_minflt - r0.ru_minflt) / batch)
    print(json.dumps({"ms_per_image": times, "cpu_ms_per_image": cpu, "faults_per_image": faults,
                      "settings": keep_cpu_memory(),
                      "threads": torch.get_num_threads()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="sg3r_256")
    parser.add_argument("--batch", default="1,4")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="processes per configuration, interleaved")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.network, args.child, args.iters, args.warmup)
    load_before = os.getloadavg()
    runs: dict[tuple[int, bool], list[dict]] = {}
    for _ in range(args.repeats):
        for keep in (True, False):
            for b in (int(x) for x in args.batch.split(",")):
                env = dict(os.environ, SG3RT_KEEP_CPU_MEMORY="1" if keep else "0")
                proc = subprocess.run([sys.executable, __file__, "--network", args.network, "--child", str(b),
                                       "--iters", str(args.iters), "--warmup", str(args.warmup)],
                                      env=env, capture_output=True, text=True)
                if proc.returncode != 0:
                    sys.exit(f"batch {b} (keep memory {keep}) failed, exit {proc.returncode}: {proc.stderr[-2000:]}")
                out = proc.stdout
                runs.setdefault((b, keep), []).append(json.loads(out.strip().splitlines()[-1]))
    rows = []
    print(f"{'network':<10} {'batch':>5} {'keep memory':>11} {'ms/image':>9} {'CPU ms/image':>12} {'faults/image':>12}"
          "  runs (median ms/image)")
    for (b, keep), rs in sorted(runs.items(), key=lambda kv: (not kv[0][1], kv[0][0])):
        ms = statistics.median(t for r in rs for t in r["ms_per_image"])
        flt = statistics.median(f for r in rs for f in r["faults_per_image"])
        cpu = statistics.median(t for r in rs for t in r["cpu_ms_per_image"])
        per_run = [round(statistics.median(r["ms_per_image"]), 1) for r in rs]
        print(f"{args.network:<10} {b:>5} {str(keep):>11} {ms:>9.1f} {cpu:>12.1f} {flt:>12.0f}  {per_run}")
        rows.append({"network": args.network, "batch": b, "keep_memory": keep, "ms_per_image": ms, "cpu_ms_per_image": cpu,
                     "faults_per_image": flt, "run_medians": per_run, "settings": rs[0]["settings"]})
    meta = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "threads": rs[0]["threads"],
            "iters": args.iters, "repeats": args.repeats, "load_before": load_before, "load_after": os.getloadavg(),
            "note": "synthesis only, one call per batch, fp32; shared machine: see load"}
    print(f"load average before {load_before}, after {meta['load_after']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, {"meta": meta, "results": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
