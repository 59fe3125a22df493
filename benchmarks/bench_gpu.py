"""Frames/s of every GPU runtime on a full-size official config (random weights), in one run.

Usage: python benchmarks/bench_gpu.py [--res 1024] [--kind stylegan3-r] [--batch 1,4,16]
           [--variants torch:fp32,torch:fp16,torch:fp16:graphs,onnxruntime:fp32,onnxruntime:fp16,tensorrt:fp16]
Prints a table and writes benchmarks/results/bench_gpu.json (GPU name, versions, settings). A variant is
backend:precision[:graphs]; `graphs` replays PyTorch from CUDA graphs. Variants whose backend is
missing here are listed as skipped with the reason. What is timed is `frames()` (synthesis, uint8 on
the GPU, copy to the host), as in `sg3rt bench`; "peak MiB" is torch's allocator peak while timing
(0 for what ONNX Runtime allocates), "GPU used" the device's used memory after the runs. ONNX exports for the benchmark are not verified
against torch (ONNX Runtime CPU at 1024 px takes minutes); the tests verify exports on the references.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from sg3rt.errors import BackendUnavailableError
from sg3rt.networks.configs import random_official_generator
from sg3rt.networks.layers import set_fir_impl
from sg3rt.runtime import open_generator
from sg3rt.runtime.bench import bench_runtime

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_gpu.json"
DEFAULT_VARIANTS = ("torch:fp32,torch:fp16,torch:fp16:graphs,torch:fp32:conv@1,torch:fp16:conv@1,"
                    "onnxruntime:fp32@1;4,onnxruntime:fp16@1;4,tensorrt:fp16")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "torch": torch.__version__, "cuda": str(torch.version.cuda),
           "cudnn": str(torch.backends.cudnn.version())}
    for name in ("onnxruntime", "tensorrt"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = "missing"
    return out


def open_variant(G, variant: str, export_root: Path):
    """backend:precision[:graphs][:conv] -> an open runtime on cuda (exports without verification).
    conv: PyTorch filters with cuDNN depthwise convolutions instead of the matmul form (see networks/fir.py)."""
    backend, precision, *flags = variant.split(":")
    if backend == "torch":
        G = set_fir_impl(copy.deepcopy(G), "conv" if "conv" in flags else "auto")
        return open_generator(G, backend="torch", device="cuda", precision=precision, cuda_graphs="graphs" in flags)
    from sg3rt.export import export_onnx

    if backend == "tensorrt":
        from sg3rt.export.tensorrt_build import import_tensorrt

        import_tensorrt()  # fail before a long export when TensorRT is missing
    graph_precision = precision if backend == "onnxruntime" else "fp32"  # TensorRT lowers precision itself
    out = export_root / f"{graph_precision}"
    if not (out / "model.json").is_file():
        start = time.perf_counter()
        export_onnx(G, out, precision=graph_precision, verify=False)
        print(f"  exported {graph_precision} ONNX in {time.perf_counter() - start:.0f} s", flush=True)
    return open_generator(out, backend=backend, device="cuda", precision=precision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--res", type=int, default=1024, help="official config resolution (256/512/1024)")
    parser.add_argument("--kind", default="stylegan3-r", help="stylegan3-r or stylegan3-t")
    parser.add_argument("--batch", default="1,4,16", help="comma-separated batch sizes")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS,
                        help="backend:precision[:graphs][:conv][@batch;batch], comma-separated; @ overrides --batch")
    parser.add_argument("--iters", type=int, default=10, help="timed iterations (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN time its algorithms per shape")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False)")
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    batches = [int(b) for b in args.batch.split(",")]
    G = random_official_generator(args.kind, args.res)
    gpu = torch.cuda.get_device_name()
    print(f"{args.kind} {args.res}px (random weights) on {gpu}; tf32 conv {torch.backends.cudnn.allow_tf32}, "
          f"cudnn.benchmark {args.cudnn_benchmark}")
    print(f"{'variant':<22} {'batch':>5} {'frames/s':>9} {'ms/frame':>9} {'peak MiB':>9} {'GPU used':>9}", flush=True)
    rows, skipped = [], {}
    export_root = Path(tempfile.mkdtemp(prefix="sg3rt-bench-gpu-"))
    for spec in args.variants.split(","):
        variant, _, only = spec.partition("@")
        sizes = [int(b) for b in only.split(";")] if only else batches
        try:
            rt = open_variant(G, variant, export_root)
        except BackendUnavailableError as e:
            skipped[variant] = str(e)
            print(f"{variant:<22} skipped: {e}", flush=True)
            continue
        with rt:
            for b in sizes:
                try:
                    r = bench_runtime(rt, b, args.iters, args.warmup)
                except torch.cuda.OutOfMemoryError:
                    print(f"{variant:<22} {b:>5} out of GPU memory", flush=True)
                    torch.cuda.empty_cache()
                    continue
                free, total = torch.cuda.mem_get_info()
                used = (total - free) / 2**20  # the whole GPU: also ONNX Runtime's arena, which torch cannot see
                rows.append({"variant": variant, **r.to_json(), "gpu_used_mib": used})
                split = f"  ({r.chunk} per call)" if r.chunk < b else ""
                print(f"{variant:<22} {b:>5} {r.frames_per_s:>9.2f} {r.ms_per_frame:>9.2f} {r.peak_mem_mib:>9.0f} "
                      f"{used:>9.0f}{split}", flush=True)
        torch.cuda.empty_cache()
    result = {"gpu": gpu, "config": f"{args.kind}-{args.res} random weights", "versions": versions(),
              "tf32_conv": torch.backends.cudnn.allow_tf32, "cudnn_benchmark": args.cudnn_benchmark,
              "iters": args.iters, "results": rows, "skipped": skipped}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
