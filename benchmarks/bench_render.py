"""Is encoding hidden? Total render time (compute + overlapped encoding) vs compute-only, same frames.

    python benchmarks/bench_render.py [--network NET] [--frames 120] [--batch 8] [--repeats 3] [--formats mp4,png,gif]
        [--codecs h264,h264-nvenc,hevc-nvenc] [--device cuda --precision fp16 --cuda-graphs]

For each output format: compute-only (frames computed and discarded), encode-only (the same frames
written synchronously, no network), and the real render (compute overlapped with encoding on the
writer thread, container finished and renamed). --codecs gives the MP4 one row per codec (libx264 vs
NVENC, in one run); a codec that cannot open here (no NVENC) is reported with ffmpeg's reason and skipped.
Targets: render <= 1.15 x compute-only on the CPU; >= 60 frames/s at 1024 px on a GPU (issue 10).
Figures are medians over --repeats runs after one warm-up; compute-only and render runs alternate
and the ratio is the median of the paired ratios, so load from other processes hits both alike. Prints a table and writes
benchmarks/results/render_<device>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from sg3rt import Sg3rtError, __version__  # noqa: E402
from sg3rt.animate import Animation, Motion, PathSpec, frame_batches, open_writer, output_codec, render  # noqa: E402
from sg3rt.runtime import open_generator  # noqa: E402

TARGET_RATIO = 1.15  # render / compute-only, on the CPU
TARGET_FPS_GPU = 60.0  # render frames/s at 1024 px on a GPU (issue 10)
SUFFIX = {"mp4": "out.mp4", "gif": "out.gif", "png": "frames"}


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default=None, help="network file (default: the embedded default network)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--formats", default="mp4,png,gif")
    ap.add_argument("--codecs", "--codec", default=None,
                    help="MP4 codecs, one row each, e.g. h264,h264-nvenc,hevc-nvenc (default: h264)")
    ap.add_argument("--precision", default=None, help="fp32 | fp16 | bf16 (default: the backend's)")
    ap.add_argument("--cuda-graphs", action="store_true", help="torch backend: replay synthesis from CUDA graphs")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/render_<device>.json)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    options = {"cuda_graphs": True} if args.cuda_graphs else {}
    runtime = open_generator(args.network, backend=args.backend, device=args.device, precision=args.precision, **options)
    anim = Animation(runtime, [0, 1, 2, 3], PathSpec("cubic", loop=True, psi=0.7), 30.0,
                     motion=Motion(rotate=360) if runtime.is_stylegan3 else Motion(), frames=args.frames)
    h, w = anim.frame_size

    def compute_only() -> None:
        for _ in frame_batches(runtime, anim, args.batch):
            pass

    frames = np.concatenate(list(frame_batches(runtime, anim, args.batch)))  # warm-up; frames for encode-only
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="sg3rt-bench-"))
    try:
        codecs = args.codecs.split(",") if args.codecs else [None]
        cases = [(fmt, codec) for fmt in args.formats.split(",") for codec in (codecs if fmt == "mp4" else [None])]
        for fmt, codec in cases:
            target = tmp / SUFFIX[fmt]
            try:
                name = output_codec(target, codec)[0]  # (the NVENC probe runs here, outside the timings)
            except Sg3rtError as e:
                print(f"skipped {fmt} --codec {codec}: {e}")
                rows.append({"format": fmt, "codec": codec, "skipped": str(e)})
                continue

            def clear() -> None:
                shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)

            def encode_only() -> None:
                with open_writer(target, 30.0, codec=codec) as writer:
                    for i in range(0, len(frames), args.batch):
                        writer.write(frames[i:i + args.batch])

            def full_render() -> None:
                with open_writer(target, 30.0, codec=codec) as writer, \
                        contextlib.closing(render(runtime, anim, writer, args.batch)) as ev:
                    for _ in ev:
                        pass

            # Compute-only and render alternate, so a load change on the machine hits both alike.
            t_compute, t_encode, t_render = [], [], []
            for _ in range(args.repeats):
                clear()
                t_encode.append(timed(encode_only))
                clear()
                t_compute.append(timed(compute_only))
                t_render.append(timed(full_render))
            c, e, r = (statistics.median(t) for t in (t_compute, t_encode, t_render))
            ratio = statistics.median(b / a for a, b in zip(t_compute, t_render))  # paired runs
            rows.append({"format": fmt, "codec": name, "compute_s": c, "encode_only_s": e, "render_s": r,
                         "sequential_s": c + e, "ratio": ratio, "compute_fps": args.frames / c,
                         "encode_fps": args.frames / e, "render_fps": args.frames / r,
                         "meets_target": ratio <= TARGET_RATIO, "meets_fps_target": args.frames / r >= TARGET_FPS_GPU,
                         "runs": {"compute_s": t_compute, "encode_only_s": t_encode, "render_s": t_render}})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    source = args.network or "embedded default network"
    print(f"{source}: {runtime.kind} {h}x{w}, {args.frames} frames, batch {args.batch}, {runtime.backend} on "
          f"{runtime.device} {runtime.precision}, torch threads {torch.get_num_threads()}, medians of {args.repeats}")
    print(f"{'format':<16} {'compute s':>10} {'encode s':>9} {'render s':>9} {'compute+encode':>15} {'ratio':>6} "
          f"{'compute fps':>12} {'encode fps':>11} {'render fps':>11}")
    on_gpu = runtime.device.type == "cuda"
    for r in rows:
        label = f"mp4/{r['codec']}" if r["format"] == "mp4" else r["format"]
        if "skipped" in r:
            print(f"{label:<16} skipped: {r['skipped']}")
            continue
        target = (("" if r["meets_fps_target"] else f"  (< {TARGET_FPS_GPU:g} fps target)") if on_gpu else
                  ("" if r["meets_target"] else f"  (> {TARGET_RATIO} target)"))
        print(f"{label:<16} {r['compute_s']:>10.3f} {r['encode_only_s']:>9.3f} {r['render_s']:>9.3f} "
              f"{r['sequential_s']:>15.3f} {r['ratio']:>6.3f} {r['compute_fps']:>12.1f} {r['encode_fps']:>11.1f} "
              f"{r['render_fps']:>11.1f}{target}")
    result = {
        "benchmark": "render", "sg3rt": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "processor": platform.processor(), "device": str(runtime.device),
        "backend": runtime.backend, "precision": runtime.precision, "network": source, "kind": runtime.kind, "frame_size": [h, w],
        "frames": args.frames, "batch": args.batch, "repeats": args.repeats, "threads": torch.get_num_threads(),
        "target_ratio": TARGET_RATIO, "target_fps_gpu": TARGET_FPS_GPU, "rows": rows,
    }
    out = Path(args.out) if args.out else HERE / "results" / f"render_{runtime.device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
