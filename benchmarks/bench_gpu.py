"""Frames/s of every GPU runtime on a full-size official config (random weights), in one run.

Usage: python benchmarks/bench_gpu.py [--res 1024] [--kind stylegan3-r] [--batch 1,4,8,16]
           [--variants torch:fp32,torch:fp16,torch:fp16:graphs,onnxruntime:fp32,onnxruntime:fp16,tensorrt:fp16]
           [--layers] [--dry-run]
Issue 10's runs: --kind stylegan3-r --res 1024; --kind stylegan3-t --res 1024; --res 512; --res 256 (each with
--layers). Prints a table and writes benchmarks/results/bench_gpu.json (GPU name, versions, settings). A variant is
backend:precision[:graphs][:conv|:fused|:matmul]; `graphs` replays PyTorch from CUDA graphs; conv / matmul / fused
pick the FIR implementation (default auto: fused where Triton imports). --layers adds, per synthesis layer, the
fused op's ms (triton.testing.do_bench) in fp16 / bf16 / fp32 beside the unfused path, and the bytes/s it
achieves (input read + output written) against the GPU's memory bandwidth; --tiles / --warps sweep the kernel's
tile size and warps per layer (the tuning run). --dry-run lists what would run (CPU). Variants whose backend is
missing here are listed as skipped with the reason. What is timed is `frames()` (synthesis, uint8 on
the GPU, copy to the host), as in `sg3rt bench`; "peak MiB" is torch's allocator peak while timing
(0 for what ONNX Runtime allocates), "GPU used" the device's used memory after the runs. ONNX exports for the benchmark are not verified
against torch (ONNX Runtime CPU at 1024 px takes minutes); the tests verify exports on the references.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from sg3rt.errors import BackendUnavailableError
from sg3rt.networks.configs import random_official_generator
from sg3rt.runtime import open_generator
from sg3rt.runtime.bench import bench_runtime

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_gpu.json"
DEFAULT_VARIANTS = ("torch:fp32:fused,torch:fp32:fused:graphs,torch:fp16:fused,torch:fp16:fused:graphs,"
                    "torch:fp32:matmul,torch:fp16:matmul,torch:fp16:matmul:graphs,torch:fp32:conv@1,torch:fp16:conv@1,"
                    "onnxruntime:fp32@1;4,onnxruntime:fp16@1;4,tensorrt:fp16")
# per-layer timing: name -> (dtype, fp32 dot precision)
LAYER_DTYPES = {"fp16": (torch.float16, "ieee"), "bf16": (torch.bfloat16, "ieee"), "fp32": (torch.float32, "ieee"),
                "fp32-tf32x3": (torch.float32, "tf32x3")}
LAYER_BATCH = 4  # images per per-layer timing
PEAK_GBS = {"H100 SXM": 3350.0, "H100 PCIe": 2000.0, "H100 NVL": 3900.0, "H200": 4800.0, "A100": 2000.0}  # GB/s


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "torch": torch.__version__, "cuda": str(torch.version.cuda),
           "cudnn": str(torch.backends.cudnn.version())}
    for name in ("onnxruntime", "tensorrt", "triton"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = "missing"
    return out


def open_variant(G, variant: str, export_root: Path):
    """backend:precision[:graphs][:conv|:matmul|:fused] -> an open runtime on cuda (exports without verification).
    torch: conv = cuDNN depthwise convolutions; matmul = fir_matmul's form (auto before the fused op); fused =
    one Triton kernel per layer (filtered_lrelu.py); none given: auto. onnxruntime / tensorrt: an export form
    flag (networks/forms.py FIR_FORMS: conv, polyphase, merged) writes the graph in that form instead of the
    target's own (export.onnx_export.TARGET_FIR_FORMS), to measure which form a GPU runtime runs fastest."""
    backend, precision, *flags = variant.split(":")
    if backend == "torch":
        impl = next((f for f in flags if f in ("conv", "matmul", "fused")), "auto")
        return open_generator(G, backend="torch", device="cuda", precision=precision, cuda_graphs="graphs" in flags,
                              fir=impl)
    from unittest import mock

    from sg3rt.export import export_onnx
    from sg3rt.export.onnx_export import TARGET_FIR_FORMS
    from sg3rt.networks.forms import FIR_FORMS

    if backend == "tensorrt":
        from sg3rt.export.tensorrt_build import import_tensorrt

        import_tensorrt()  # fail before a long export when TensorRT is missing
    elif backend == "onnxruntime":
        from sg3rt.runtime.onnxruntime_backend import ort_cuda_available

        if not ort_cuda_available():  # fail before a long export (the GPU image's onnxruntime is the CPU one)
            raise BackendUnavailableError("onnxruntime has no CUDAExecutionProvider here (pip install onnxruntime-gpu)")
    target = "tensorrt" if backend == "tensorrt" else "onnxruntime-cuda"
    form = next((f for f in flags if f in FIR_FORMS), TARGET_FIR_FORMS[target])
    graph_precision = precision if backend == "onnxruntime" else "fp32"  # TensorRT lowers precision itself
    out = export_root / f"{graph_precision}-{target}-{form}"
    if not (out / "model.json").is_file():
        start = time.perf_counter()
        with mock.patch.dict(TARGET_FIR_FORMS, {target: form}):  # this form for the target, in this process only
            export_onnx(G, out, precision=graph_precision, verify=False, target=target)
        print(f"  exported {graph_precision} ONNX ({target}, form {form}) in {time.perf_counter() - start:.0f} s",
              flush=True)
    return open_generator(out, backend=backend, device="cuda", precision=precision)


def peak_bandwidth_gbs(gpu: str) -> float | None:
    """The GPU's memory bandwidth from its name (None where unknown)."""
    for name, gbs in PEAK_GBS.items():
        if all(part in gpu for part in name.split()):
            return gbs
    return None


def layer_rows(G, batch: int) -> list[dict]:
    """The fused layers of G with the fused op's input shape: what --layers times (CPU-safe: no GPU needed).
    StyleGAN3: every filtered layer (not ToRGB); StyleGAN2: every conv layer's epilogue (fir_bias_act.py)."""
    rows = []
    if G.kind == "stylegan2":
        for res in G.synthesis.block_resolutions:
            for name in ("conv0", "conv1"):
                layer = getattr(getattr(G.synthesis, f"b{res}"), name, None)
                if layer is not None:
                    size = res + 1 if layer.up > 1 else res  # the transposed conv's 2 (R/2) + 1 samples, or R
                    rows.append({"layer": f"b{res}.{name}", "shape": [batch, layer.out_channels, size, size],
                                 "up": layer.up, "down": 1, "up_taps": layer.fir.taps if layer.up > 1 else 1,
                                 "down_filter": [], "padding": list(layer.fir.padding) if layer.up > 1 else [0] * 4})
        return rows
    for name in G.synthesis.layer_names:
        layer = getattr(G.synthesis, name)
        if layer.upsample is None or layer.downsample is None:
            continue  # ToRGB: bias + clamp stays on the plain path
        size = layer.in_size + layer.conv_kernel - 1  # after the modulated conv
        rows.append({"layer": name, "shape": [batch, layer.out_channels, size, size], "up": layer.up,
                     "down": layer.down, "up_taps": layer.up_filter.shape[0],
                     "down_filter": list(layer.down_filter.shape), "padding": list(layer.padding)})
    return rows


def time_layers(G, rows: list[dict], gpu: str, dtypes: list[str], tiles: list[int | None],
                warps: list[int], out: list[dict]) -> None:
    """ms of the fused op and of the unfused chain per layer and dtype, appended to `out` as they are measured;
    GB/s of the fused op's own traffic. Each (tile, warps) pair is timed where the tile fits the layer (None:
    the default tile of the dtype)."""
    from triton.testing import do_bench

    from sg3rt.networks.filtered_lrelu import ACT_BLOCK_CUDA, NUM_WARPS, filtered_lrelu_reference, fused_filtered_lrelu

    peak = peak_bandwidth_gbs(gpu)
    for row in rows:
        layer = getattr(G.synthesis, row["layer"]).cuda()
        args = (layer.bias, layer.up_filter, layer.down_filter, layer.up, layer.down, layer.padding,
                layer.upsample.gain, 1.0, 0.2, layer.conv_clamp)
        for dname in dtypes:
            dtype, precision = LAYER_DTYPES[dname]
            x = torch.randn(row["shape"], device="cuda", dtype=dtype)
            plain_ms = do_bench(lambda: filtered_lrelu_reference(x, *args))
            exact = filtered_lrelu_reference(x.float(), *args)  # the plain path in fp32: what errors are against
            for tile in tiles:
                for nw in warps:
                    nw = nw or NUM_WARPS
                    cache: dict = {}
                    try:
                        y = fused_filtered_lrelu(x, *args, cache=cache, act_block=tile, num_warps=nw,
                                                 dot_precision=precision)
                    except ValueError:
                        continue  # this tile cannot hold the layer's down-filter
                    err = ((y.float() - exact).abs().max() / exact.abs().max()).item()
                    fused_ms = do_bench(lambda: fused_filtered_lrelu(x, *args, cache=cache, act_block=tile,
                                                                     num_warps=nw, dot_precision=precision))
                    gbs = (x.numel() + y.numel()) * x.element_size() / fused_ms / 1e6
                    out.append({**row, "dtype": dname, "fused_ms": fused_ms, "max_rel_err_vs_fp32": err,
                                "plain_ms": plain_ms, "act_block": tile or ACT_BLOCK_CUDA[dtype], "num_warps": nw,
                                "default_tile": tile is None, "fused_gbs": gbs,
                                "bandwidth_frac": None if peak is None else gbs / peak})
                    frac = "" if peak is None else f" {100 * gbs / peak:>5.1f}%"
                    print(f"{row['layer']:<18} {dname:<11} {out[-1]['act_block']:>4} {nw:>5} "
                          f"{fused_ms:>9.3f} {plain_ms:>9.3f} {gbs:>8.0f}{frac} {err:>9.1e}", flush=True)
        layer.cpu()


def time_stylegan2_layers(G, rows: list[dict], gpu: str, dtypes: list[str], blocks: list[tuple[int, int] | None],
                          warps: list[int | None], out: list[dict]) -> None:
    """ms of StyleGAN2's fused epilogue (blur, demodulation, noise, bias, activation) and of its unfused chain per
    layer and dtype (at LAYER_BATCH the demodulation is the kernel's, as at any batch > 1); GB/s of its traffic."""
    from triton.testing import do_bench

    from sg3rt.networks.fir_bias_act import BLOCK_CUDA, NUM_WARPS, fir_bias_act_reference, fused_fir_bias_act

    peak = peak_bandwidth_gbs(gpu)
    for row in rows:
        res, name = row["layer"][1:].split(".")
        layer = getattr(getattr(G.synthesis, f"b{res}"), name).cuda()
        fir, f = (layer.fir, layer.resample_filter) if layer.up > 1 else (None, None)
        b, c = row["shape"][:2]
        scale = torch.rand([b, c], device="cuda") + 0.5
        noise = layer.noise_const.reshape(1, 1, *layer.noise_const.shape)
        strength = torch.full([], 0.1, device="cuda")
        bias = torch.randn([c], device="cuda")
        for dname in dict.fromkeys(d.split("-")[0] for d in dtypes):  # fp32-tf32x3: the same as fp32 (no dots)
            dtype = LAYER_DTYPES[dname][0]
            x = torch.randn(row["shape"], device="cuda", dtype=dtype)

            def plain(x=x):
                return fir_bias_act_reference(x, fir, f, scale, noise * strength, bias, 2**0.5, 0.2, layer.conv_clamp)

            plain_ms = do_bench(plain)
            exact = plain(x.float())
            for block in blocks:
                for nw in warps:
                    def fused(x=x, block=block, nw=nw):
                        return fused_fir_bias_act(x, fir, f, scale, noise, strength, bias, 2**0.5, 0.2, layer.conv_clamp,
                                                  block=block, num_warps=nw or NUM_WARPS)

                    y = fused()
                    err = ((y.float() - exact).abs().max() / exact.abs().max()).item()
                    fused_ms = do_bench(fused)
                    gbs = (x.numel() + y.numel()) * x.element_size() / fused_ms / 1e6
                    tile = "x".join(map(str, block or BLOCK_CUDA))
                    out.append({**row, "dtype": dname, "fused_ms": fused_ms, "max_rel_err_vs_fp32": err,
                                "plain_ms": plain_ms, "block": tile, "num_warps": nw or NUM_WARPS,
                                "default_tile": block is None and nw is None, "fused_gbs": gbs,
                                "bandwidth_frac": None if peak is None else gbs / peak})
                    frac = "" if peak is None else f" {100 * gbs / peak:>5.1f}%"
                    print(f"{row['layer']:<18} {dname:<11} {tile:>6} {nw or NUM_WARPS:>5} "
                          f"{fused_ms:>9.3f} {plain_ms:>9.3f} {gbs:>8.0f}{frac} {err:>9.1e}", flush=True)
        layer.cpu()


def parse_tiles(kind: str, tiles: str, warps: str) -> tuple[list, list]:
    """--tiles / --warps -> the values to sweep (None: the op's default). StyleGAN3's tiles are activation tile sides
    (32,64,128), StyleGAN2's output blocks ROWSxCOLS (16x64,32x64). Raises ValueError on a malformed list."""
    if tiles == "default":
        tile_list = [None]
    elif kind == "stylegan2":
        tile_list = [tuple(int(n) for n in t.split("x")) for t in tiles.split(",")]
        if any(len(t) != 2 or any(n < 1 or n & (n - 1) for n in t) for t in tile_list):
            raise ValueError(tiles)
    else:
        tile_list = [int(t) for t in tiles.split(",")]
    warp_list = [None] if warps == "default" else [int(w) for w in warps.split(",")]
    return tile_list, warp_list


class _Saving(list):
    """A list that calls `save` after each append: the per-layer rows of a run, kept as they come."""

    def __init__(self, target: list, save) -> None:
        super().__init__()
        self.target, self.save = target, save

    def append(self, row) -> None:
        super().append(row)
        self.target.append(row)
        self.save()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--res", type=int, default=1024, help="official config resolution (256/512/1024)")
    parser.add_argument("--kind", default="stylegan3-r", help="stylegan3-r, stylegan3-t or stylegan2")
    parser.add_argument("--batch", default="1,4,8,16", help="comma-separated batch sizes")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS,
                        help="backend:precision[:graphs][:conv|:matmul|:fused|:polyphase|:merged][@batch;batch], "
                        "comma-separated; @ overrides --batch")
    parser.add_argument("--iters", type=int, default=10, help="timed iterations (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN time its algorithms per shape")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON path (default: {RESULTS.name}; a dry run writes "
                        "only when given one, never over the measured results)")
    parser.add_argument("--layers", action="store_true", help="also time the fused op per layer (see above)")
    parser.add_argument("--layer-dtypes", default="fp16,bf16,fp32", help="dtypes of the per-layer timing "
                        f"({', '.join(LAYER_DTYPES)}; fp32-tf32x3: fp32 with 3xTF32 tensor-core dots)")
    parser.add_argument("--tiles", default="default", help="per-layer timing: activation tile sides to sweep, e.g. "
                        "32,64,128 (default: the fused op's own per dtype; kernel_resources.py lists which spill); "
                        "StyleGAN2: output blocks, e.g. 16x64,32x64")
    parser.add_argument("--warps", default="default", help="per-layer timing: warps per program to sweep, e.g. 4,8 "
                        "(default: the op's own)")
    parser.add_argument("--dry-run", action="store_true", help="list layers and variants; time nothing (CPU)")
    args = parser.parse_args()
    unknown = [d for d in args.layer_dtypes.split(",") if d not in LAYER_DTYPES]
    if unknown:  # before anything runs: a typo must not cost a GPU session the variants first
        sys.exit(f"--layer-dtypes: unknown {', '.join(unknown)} (choose from {', '.join(LAYER_DTYPES)})")
    try:
        tiles, warps = parse_tiles(args.kind, args.tiles, args.warps)
    except ValueError:
        sys.exit(f"--tiles / --warps take comma-separated integers (StyleGAN2 tiles: ROWSxCOLS powers of two), got "
                 f"{args.tiles!r} / {args.warps!r}")
    if args.dry_run:
        G = random_official_generator(args.kind, args.res)
        rows = layer_rows(G, LAYER_BATCH)
        for row in rows:
            print(f"{row['layer']:<18} {str(row['shape']):<22} up {row['up']} down {row['down']} "
                  f"fu {row['up_taps']} fd {row['down_filter']} pad {row['padding']}")
        print("variants:", ", ".join(args.variants.split(",")), "| batches:", args.batch)
        result = {"config": f"{args.kind}-{args.res} random weights", "dry_run": True, "layers": rows,
                  "variants": args.variants.split(","), "batches": [int(b) for b in args.batch.split(",")]}
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n")
            print(f"wrote {args.out}")
        return
    args.out = args.out or RESULTS
    if not torch.cuda.is_available():
        sys.exit("bench_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False)")
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    batches = [int(b) for b in args.batch.split(",")]
    G = random_official_generator(args.kind, args.res)
    gpu = torch.cuda.get_device_name()
    print(f"{args.kind} {args.res}px (random weights) on {gpu}; tf32 conv {torch.backends.cudnn.allow_tf32}, "
          f"cudnn.benchmark {args.cudnn_benchmark}")
    print(f"{'variant':<22} {'batch':>5} {'frames/s':>9} {'ms/frame':>9} {'peak MiB':>9} {'GPU used':>9}", flush=True)
    rows, skipped, layers = [], {}, []

    def save() -> None:  # after every variant and layer: a run cut short by its time limit keeps what it measured
        result = {"gpu": gpu, "config": f"{args.kind}-{args.res} random weights", "versions": versions(),
                  "tf32_conv": torch.backends.cudnn.allow_tf32, "cudnn_benchmark": args.cudnn_benchmark,
                  "iters": args.iters, "results": rows, "skipped": skipped, "layers": layers,
                  "layer_batch": LAYER_BATCH, "peak_gbs": peak_bandwidth_gbs(gpu)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(args.out)

    export_root = Path(tempfile.mkdtemp(prefix="sg3rt-bench-gpu-"))
    for spec in filter(None, args.variants.split(",")):  # --variants "": the per-layer timing only
        variant, _, only = spec.partition("@")
        sizes = [int(b) for b in only.split(";")] if only else batches
        try:
            rt = open_variant(G, variant, export_root)
        except BackendUnavailableError as e:
            skipped[variant] = str(e)
            print(f"{variant:<22} skipped: {e}", flush=True)
            save()
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
                save()
        torch.cuda.empty_cache()
    if args.layers:
        print(f"\n{'layer':<18} {'dtype':<11} {'tile':>4} {'warps':>5} {'fused ms':>9} {'plain ms':>9} {'GB/s':>8} "
              f"{'of peak':>6} {'rel err':>9}  (rel err: max |fused - plain fp32| / max |plain fp32|)", flush=True)
        dtypes = args.layer_dtypes.split(",")
        timer = time_stylegan2_layers if G.kind == "stylegan2" else time_layers
        timer(G, layer_rows(G, LAYER_BATCH), gpu, dtypes, tiles, warps, _Saving(layers, save))
    save()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
