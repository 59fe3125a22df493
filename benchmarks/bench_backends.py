"""ONNX Runtime (CPU EP), old and new export forms, against PyTorch eager (CPU), as ratios.

Usage: python benchmarks/bench_backends.py [--networks sg3r_64,sg3r_256] [--batch 1,4] [--iters 5] [--repeats 2]

Per reference network and batch: PyTorch (the torch runtime as `auto` runs it), ONNX Runtime on the
`portable` export (the old form: depthwise ConvTranspose upsampling), on the `onnxruntime-cpu` export with
its earlier form "polyphase" (banded MatMul + polyphase rows interleaved, channels padded to 16) and with
its form now, "merged" (the rows merged into the down-filters; networks/forms.py). Every (backend, form) runs
in its own process, `repeats` times, interleaved; the table quotes the median over all timed calls of
all repeats, and each run's median beside it. All get the same threads. The machine is shared with
other jobs: its load average is recorded, and figures from a busy machine are noisy.
Writes benchmarks/results/bench_backends.json and, per network and form, ONNX Runtime's top ops
(one profiled process at batch 1) as benchmarks/results/ort_profile_<network>_<form><--profile-tag>.json.
The figures decide `CPU_AUTO_BACKEND` in runtime/registry.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

RESULTS = ROOT / "benchmarks" / "results"
# column -> (export target, FIR form written for it; None: the target's own, export.onnx_export.TARGET_FIR_FORMS)
MODES = {"torch": None, "ort_old": ("portable", None), "ort_rows": ("onnxruntime-cpu", "polyphase"),
         "ort_new": ("onnxruntime-cpu", None)}
PROFILE_RUNS = 3  # profiled synthesis calls after one warm-up
TOP_OPS = 12  # rows of a profile summary


def child_bench(network: str, mode: str, export_dir: str | None, batches: list[int], iters: int, warmup: int,
                threads: int) -> None:
    """One process: frames() at every batch with one backend; prints one JSON line."""
    import torch

    from refdata import reference_file

    from sg3rt.runtime import open_generator
    from sg3rt.runtime.bench import bench_runtime

    torch.set_num_threads(threads)
    if mode == "torch":
        rt = open_generator(reference_file(f"{network}.pkl"), backend="torch", device="cpu")
    else:
        rt = open_generator(export_dir, backend="onnxruntime", device="cpu", threads=threads)
    with rt:
        out = [bench_runtime(rt, b, iters, warmup).to_json() for b in batches]
    print(json.dumps(out))


def child_profile(export_dir: str, threads: int, out: str) -> None:
    """One process: ONNX Runtime's own profile of synthesis at batch 1, summed per op type and per node."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = threads, 3
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort")
    session = ort.InferenceSession(str(Path(export_dir) / "synthesis.onnx"), options,
                                   providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {"ws": (rng.standard_normal([1, *session.get_inputs()[0].shape[1:]]) * 0.3).astype(np.float32)}
    if any(i.name == "transform" for i in session.get_inputs()):
        feed["transform"] = np.eye(3, dtype=np.float32)[None]
    for _ in range(1 + PROFILE_RUNS):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    by_op: dict[str, float] = defaultdict(float)
    by_node: dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"] / 1000 / PROFILE_RUNS
            by_node[f'{e["args"]["op_name"]} {e["name"][:-12]}'] += e["dur"] / 1000 / PROFILE_RUNS
    total = sum(by_op.values())
    top = lambda d: [{"name": k, "ms": round(v, 2), "share": round(v / total, 3)}  # noqa: E731
                     for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:TOP_OPS]]
    Path(out).write_text(json.dumps({"threads": threads, "kernel_ms_per_call": round(total, 2),
                                     "top_op_types": top(by_op), "top_nodes": top(by_node)}, indent=2) + "\n")


def run_child(*args: str) -> str:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="sg3r_64,sg3r_256", help="reference networks (tests/data)")
    parser.add_argument("--batch", default="1,4", help="comma-separated batch sizes")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per process (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    parser.add_argument("--repeats", type=int, default=2, help="processes per backend and form, interleaved")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="threads for every backend")
    parser.add_argument("--no-profile", action="store_true", help="skip the ONNX Runtime profiles")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_backends.json")
    parser.add_argument("--profile-tag", default="", help="suffix of the profile files' names")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    batches = [int(b) for b in args.batch.split(",")]
    if args.child:
        if args.child[0] == "profile":
            return child_profile(args.child[1], args.threads, args.child[2])
        network, mode, export_dir = args.child
        return child_bench(network, mode, export_dir or None, batches, args.iters, args.warmup, args.threads)

    from refdata import reference_file

    from unittest import mock

    from sg3rt import load_generator
    from sg3rt.export import export_onnx
    from sg3rt.export.onnx_export import TARGET_FIR_FORMS

    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="sg3rt-bench-"))
    rows = []
    print(f"{'network':<9} {'batch':>5} {'torch ms':>9} {'ort old ms':>10} {'ort rows ms':>11} {'ort new ms':>10} "
          f"{'old/torch':>9} {'rows/torch':>10} {'new/torch':>9}  (speed ratios; ms per frame, median; per-run "
          "medians in the JSON)")
    for name in args.networks.split(","):
        G = load_generator(reference_file(f"{name}.pkl"))
        dirs, forms = {mode: "" for mode in MODES}, {}
        for mode, spec in MODES.items():
            if spec is not None:
                target, form = spec
                forms[mode] = form = form or TARGET_FIR_FORMS[target]
                with mock.patch.dict(TARGET_FIR_FORMS, {target: form}):  # an earlier form of the target
                    dirs[mode] = str(export_onnx(G, work / f"{name}-{target}-{form}", target=target).out_dir)
        runs: dict[str, list[list[dict]]] = defaultdict(list)
        for _ in range(args.repeats):
            for mode in MODES:
                line = run_child("--child", name, mode, dirs[mode], "--batch", args.batch, "--iters", str(args.iters),
                                 "--warmup", str(args.warmup), "--threads", str(args.threads))
                runs[mode].append(json.loads(line))
        for i, b in enumerate(batches):
            ms = {mode: statistics.median(r[i]["ms_per_frame"] for r in runs[mode]) for mode in MODES}
            per_run = {mode: [round(r[i]["ms_per_frame"], 2) for r in runs[mode]] for mode in MODES}
            old, rws, new = (ms["torch"] / ms[m] for m in ("ort_old", "ort_rows", "ort_new"))
            print(f"{name:<9} {b:>5} {ms['torch']:>9.1f} {ms['ort_old']:>10.1f} {ms['ort_rows']:>11.1f} "
                  f"{ms['ort_new']:>10.1f} {old:>8.2f}x {rws:>9.2f}x {new:>8.2f}x")
            rows.append({"network": name, "batch": b, "ms_per_frame": ms, "run_ms_per_frame": per_run,
                         "forms": forms, "ort_old_over_torch": old, "ort_rows_over_torch": rws,
                         "ort_new_over_torch": new,
                         "peak_mem_mib": {mode: runs[mode][0][i]["peak_mem_mib"] for mode in MODES}})
        if not args.no_profile:
            for mode in ("ort_old", "ort_rows", "ort_new"):
                out = RESULTS / f"ort_profile_{name}_{forms[mode]}{args.profile_tag}.json"
                run_child("--child", "profile", dirs[mode], str(out), "--threads", str(args.threads))
                top = json.loads(out.read_text())["top_op_types"][:4]
                print(f"  {forms[mode]} profile: " + ", ".join(f"{t['name']} {t['share']:.0%}" for t in top))
    import onnxruntime

    meta = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "threads": args.threads,
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "iters": args.iters,
            "repeats": args.repeats, "load_before": load_before, "load_after": os.getloadavg(),
            "note": "frames() incl. uint8 conversion, ms per frame; median over repeats' medians; shared machine"}
    print(f"load average before {load_before}, after {meta['load_after']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
