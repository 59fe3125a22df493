"""PyTorch on a CPU: the fused filtered leaky ReLU (numba kernels) against the plain depthwise convolutions.

Usage: python benchmarks/bench_cpu_fused.py [--networks default,sg3r_64,sg3r_256] [--batch 1,4] [--threads 2]
                                            [--iters 5] [--repeats 2] [--layers]
Whole networks: runtime `frames()` ms per image with `fir=conv` (the plain path) and `fir=auto` (the fused
CPU kernels), every (network, fir, batch) in its own process, `repeats` rounds interleaved; the table quotes the
median of all timed calls of all rounds, and CPU time (user + system) beside wall time, which other jobs on a
shared machine disturb less. --layers adds, in one process, each layer of the embedded network: the plain chain
against the kernel, interleaved call by call. Writes benchmarks/results/cpu_fused.json (first run of the
kernels compiles them, numba caches them on disk; the warm-up calls take that).
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
RESULTS = ROOT / "benchmarks" / "results" / "cpu_fused.json"
FIRS = ("conv", "auto")  # the plain path, the fused CPU kernels
WARMUP = 2  # untimed calls per process (compile or cache load, allocator)


def _open(network: str, fir: str):
    from sg3rt.runtime import open_generator

    sys.path.insert(0, str(ROOT / "tests"))
    if network == "default":
        return open_generator(None, backend="torch", device="cpu", fir=fir)
    from refdata import reference_file

    return open_generator(reference_file(f"{network}.pkl"), backend="torch", device="cpu", fir=fir)


def child(network: str, fir: str, batch: int, iters: int, threads: int) -> None:
    """One process: time frames() at `batch`, print one JSON line."""
    import torch

    torch.set_num_threads(threads)
    rt = _open(network, fir)
    rt.chunk = batch
    gen = torch.Generator().manual_seed(0)
    z = torch.randn([batch, rt.G.z_dim], generator=gen)
    ws = rt.mapping(z, None, 0.7)
    wall, cpu = [], []
    for i in range(WARMUP + iters):
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        rt.frames(ws)
        dt, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
        if i >= WARMUP:
            wall.append(dt * 1000 / batch)
            cpu.append((r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1000 / batch)
    print(json.dumps({"ms_per_image": wall, "cpu_ms_per_image": cpu, "threads": torch.get_num_threads()}))


def layers(iters: int, threads: int) -> list[dict]:
    """Per layer of the embedded network: plain chain vs kernel, ms per call (interleaved), and their max error."""
    import torch

    from sg3rt.networks.default import default_generator
    from sg3rt.networks.filtered_lrelu import filtered_lrelu_reference
    from sg3rt.networks.filtered_lrelu_cpu import filtered_lrelu_cpu
    from sg3rt.networks.stylegan3 import LRELU_SLOPE

    torch.set_num_threads(threads)
    syn = default_generator().synthesis
    rows = []
    gen = torch.Generator().manual_seed(0)
    for name in syn.layer_names[:-1]:  # ToRGB has no filters
        layer = getattr(syn, name)
        x = torch.randn([1, layer.out_channels, layer.in_size, layer.in_size], generator=gen) * 3
        x = x.contiguous(memory_format=torch.channels_last)  # as the network's conv outputs are
        args = (x, layer.bias, layer.up_filter, layer.down_filter, layer.up, layer.down, layer.padding,
                layer.upsample.gain, 1.0, LRELU_SLOPE, layer.conv_clamp)
        cache: dict = {}
        times: dict[str, list[float]] = {"plain": [], "fused": []}
        with torch.no_grad():
            ref, out = filtered_lrelu_reference(*args), filtered_lrelu_cpu(*args, cache)
            for _ in range(iters):
                for key, fn in (("plain", lambda: filtered_lrelu_reference(*args)),
                                ("fused", lambda: filtered_lrelu_cpu(*args, cache))):
                    t0 = time.perf_counter()
                    fn()
                    times[key].append((time.perf_counter() - t0) * 1000)
        plain, fused = statistics.median(times["plain"]), statistics.median(times["fused"])
        rows.append({"layer": name, "up": layer.up, "down": layer.down, "radial": layer.down_filter.ndim == 2,
                     "in": list(x.shape), "out": list(ref.shape), "plain_ms": plain, "fused_ms": fused,
                     "speedup": plain / fused,
                     "max_rel_error": float((out - ref).abs().max() / ref.abs().max())})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="default,sg3r_64,sg3r_256")
    parser.add_argument("--batch", default="1,4")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--layers", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("NETWORK", "FIR", "BATCH"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), args.iters, args.threads)
        return

    networks = args.networks.split(",")
    batches = [int(b) for b in args.batch.split(",")]
    load0 = os.getloadavg()
    samples: dict[tuple, dict[str, list[float]]] = {}
    for _ in range(args.repeats):
        for net in networks:
            for batch in batches:
                for fir in FIRS:
                    cmd = [sys.executable, __file__, "--child", net, fir, str(batch), "--iters", str(args.iters),
                           "--threads", str(args.threads)]
                    line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
                    got = json.loads(line)
                    s = samples.setdefault((net, batch, fir), {"ms": [], "cpu_ms": []})
                    s["ms"] += got["ms_per_image"]
                    s["cpu_ms"] += got["cpu_ms_per_image"]
    rows = []
    print("| network | batch | plain ms/image | fused ms/image | speedup | plain CPU ms | fused CPU ms | CPU ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for net in networks:
        for batch in batches:
            p, f = samples[(net, batch, "conv")], samples[(net, batch, "auto")]
            row = {"network": net, "batch": batch,
                   "plain_ms": statistics.median(p["ms"]), "fused_ms": statistics.median(f["ms"]),
                   "plain_cpu_ms": statistics.median(p["cpu_ms"]), "fused_cpu_ms": statistics.median(f["cpu_ms"])}
            row["speedup"] = row["plain_ms"] / row["fused_ms"]
            row["cpu_ratio"] = row["plain_cpu_ms"] / row["fused_cpu_ms"]
            rows.append(row)
            print(f"| {net} | {batch} | {row['plain_ms']:.1f} | {row['fused_ms']:.1f} | {row['speedup']:.2f}x | "
                  f"{row['plain_cpu_ms']:.1f} | {row['fused_cpu_ms']:.1f} | {row['cpu_ratio']:.2f}x |")
    layer_rows = layers(max(args.iters, 7), args.threads) if args.layers else []
    if layer_rows:
        print("\n| layer | up | down | radial | plain ms | fused ms | speedup | max rel. error |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in layer_rows:
            print(f"| {r['layer']} | {r['up']} | {r['down']} | {r['radial']} | {r['plain_ms']:.2f} | "
                  f"{r['fused_ms']:.2f} | {r['speedup']:.2f}x | {r['max_rel_error']:.1e} |")
    import numba
    import torch

    write_json(args.out, {
        "what": "PyTorch CPU frames() ms per image, fir=conv (plain) vs fir=auto (fused numba kernels)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                    "numba": numba.__version__, "threads": args.threads,
                    "load_before": load0, "load_after": os.getloadavg()},
        "iters": args.iters, "repeats": args.repeats, "networks": rows, "layers": layer_rows,
    })
    print(f"\nload average before {load0[0]:.1f}, after {os.getloadavg()[0]:.1f}; wrote {args.out}")


if __name__ == "__main__":
    main()
