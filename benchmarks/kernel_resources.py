"""The fused filtered-lrelu kernel compiled for NVIDIA GPUs without one: registers, spills, shared memory, and
the work each tile size costs, for every filtered layer shape of the official StyleGAN3-T/R configs.

Usage: python benchmarks/kernel_resources.py [--tiles 32,64,128] [--warps 4,8] [--arch 90,80]
           [--dtypes fp16,bf16,fp32,fp32-tf32x3] [--out benchmarks/results/kernel_resources.json]

Triton compiles to PTX and its bundled ptxas to a cubin on any machine; `cuobjdump --dump-resource-usage`
reads what the cubin asks per thread and block. A variant whose registers spill to the stack runs from slow
local memory, so the tile sizes and dot precisions the fused op uses are checked here, and a GPU session
times only spill-free candidates (bench_gpu.py --layers --tiles). Per plan the table also gives the
arithmetic a tile costs: tensor-core multiply-adds per output sample (the dense polyphase banks grow with
the tile) and how many times each input sample is read (tiles overlap by the filters' reach: the halo); per 1024 px
frame of StyleGAN3-R and -T, the fused op's multiply-adds and bytes. No timing: that needs a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9's default, without its warning

from sg3rt.networks.configs import official_layers  # noqa: E402
from sg3rt.networks.filtered_lrelu import fused_plan  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "kernel_resources.json"
DTYPES = {"fp16": (torch.float16, "ieee"), "bf16": (torch.bfloat16, "ieee"), "fp32": (torch.float32, "ieee"),
          "fp32-tf32x3": (torch.float32, "tf32x3")}  # name -> (dtype, tl.dot input precision)


def plan_shapes(tiles: list[int], dtype: torch.dtype) -> dict[tuple, dict]:
    """(IB, AB, TB, RU, RD) -> the official layers that use it, with the tile's work per output sample. The
    separable terms of radial filters (RD) depend on the dtype (filtered_lrelu.SVD_EPS_FRACTION)."""
    shapes: dict[tuple, dict] = {}
    for name, layer in official_layers():
        if layer.is_torgb:
            continue
        for ab in tiles:
            try:
                p = fused_plan(layer.up_filter, layer.down_filter, layer.up, layer.down, layer.padding, 1.0,
                               dtype, torch.device("cpu"), ab)
            except ValueError:
                continue  # the tile cannot hold this layer's down-filter
            entry = shapes.setdefault(p.blocks, {"layers": [], "tile": p.tile, "in_need": p.in_need,
                                                 "macs_per_output": p.tile_macs / p.tile**2,
                                                 "read_factor": (p.in_need * layer.up / (p.tile * layer.down)) ** 2})
            entry["layers"].append(name)
    return shapes


def frame_work(kind: str, res: int, act_block: int, dtype: torch.dtype = torch.float16) -> tuple[float, float]:
    """(multiply-adds, bytes read + written at 2 bytes per sample) of the fused op over one frame of an official
    config at full width, dots in `dtype`: what bounds it from below on a GPU, before any measurement."""
    from sg3rt.networks.configs import random_official_generator
    from sg3rt.networks.filtered_lrelu import output_size

    G = random_official_generator(kind, res)
    macs = moved = 0.0
    for name in G.synthesis.layer_names:
        layer = getattr(G.synthesis, name)
        if layer.upsample is None or layer.downsample is None:
            continue  # ToRGB
        size = layer.in_size + layer.conv_kernel - 1
        p = fused_plan(layer.up_filter, layer.down_filter, layer.up, layer.down, layer.padding, 1.0, dtype,
                       torch.device("cpu"), act_block)
        out = output_size(size, layer.up_filter.shape[0], layer.down_filter.shape[0], layer.up, layer.down,
                          layer.padding[2], layer.padding[3])
        tiles = (-(-out // p.tile)) ** 2
        macs += p.tile_macs * tiles * layer.out_channels
        moved += (size * size + out * out) * layer.out_channels * 2
    return macs, moved


def main() -> None:
    from sg3rt.networks.filtered_lrelu_triton import kernel_resources

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", default="32,64,128", help="activation tile sides (act_block) to compile")
    parser.add_argument("--warps", default="4,8", help="warps per program")
    parser.add_argument("--arch", default="90,80", help="compute capabilities (90 H100/H200, 89 RTX 40xx, 80 A100)")
    parser.add_argument("--dtypes", default=",".join(DTYPES), help=f"of {', '.join(DTYPES)}")
    parser.add_argument("--max-fp32-tile", type=int, default=64, help="fp32 tiles above this are not compiled "
                        "(at 128 they spill 19-22 KB per thread, and ptxas takes minutes over each)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    tiles = [int(t) for t in args.tiles.split(",")]
    print(f"{'IB,AB,TB,RU,RD':<20} {'dtype':<12} {'arch':>4} {'warps':>5} {'regs':>5} {'stack B':>7} {'shared KiB':>10} "
          f"{'TC ops':>6} {'MAC/out':>8} {'reads':>6}  layers", flush=True)
    rows = []
    for dname in args.dtypes.split(","):
        dtype, precision = DTYPES[dname]
        for key, entry in sorted(plan_shapes(tiles, dtype).items()):
            if dtype == torch.float32 and key[1] > args.max_fp32_tile:
                continue
            for arch in (int(a) for a in args.arch.split(",")):
                for warps in (int(w) for w in args.warps.split(",")):
                    start = time.perf_counter()
                    r = kernel_resources(*key, dtype, precision, arch, warps)
                    rows.append({"ib_ab_tb_ru_rd": list(key), "dtype": dname, "arch": arch, "warps": warps,
                                 "registers": r.registers, "stack_bytes": r.stack_bytes, "shared_bytes": r.shared_bytes,
                                 "tensor_core_ops": r.tensor_core_ops, **entry,
                                 "compile_s": round(time.perf_counter() - start, 1)})
                    print(f"{','.join(map(str, key)):<20} {dname:<12} {arch:>4} {warps:>5} {r.registers:>5} "
                          f"{r.stack_bytes:>7} {r.shared_bytes / 1024:>10.1f} {r.tensor_core_ops:>6} "
                          f"{entry['macs_per_output']:>8.0f} {entry['read_factor']:>6.2f}  "
                          f"{len(entry['layers'])} ({entry['layers'][0]}...)", flush=True)
    frames = []
    for kind in ("stylegan3-r", "stylegan3-t"):
        for dname in ("fp16", "bf16", "fp32"):
            for ab in tiles:
                macs, moved = frame_work(kind, 1024, ab, DTYPES[dname][0])
                frames.append({"config": f"{kind}-1024", "dtype": dname, "act_block": ab, "tensor_core_macs": macs,
                               "bytes": moved})
                print(f"{kind} 1024 px, {dname} tiles of {ab}: {macs / 1e12:.2f} T multiply-adds "
                      f"({2 * macs / 1e12:.1f} TFLOP) and {moved / 1e9:.2f} GB per frame in the fused op (fp16 bytes)")
    import triton

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"triton": triton.__version__, "torch": torch.__version__,
                                    "python": platform.python_version(), "rows": rows, "frame_work": frames},
                                   indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
