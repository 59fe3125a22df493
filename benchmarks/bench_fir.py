"""FIR up/down-sampling per layer: cuDNN depthwise convolutions vs tiled matmuls (networks/fir.py).

Usage: python benchmarks/bench_fir.py [--res 1024] [--kind stylegan3-r] [--precision fp16] [--layers 4] [--device cuda]
Times every FirFilter of the last --layers synthesis layers of an official config (random weights) at
batch 1, on the shapes a real synthesis feeds them, in both forms, and the max difference between the
two. Prints a table and writes benchmarks/results/bench_fir_<device>.json. The result decides
`FirFilter.use_matmul` ("auto": matmul for upsampling on CUDA).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from sg3rt.networks.configs import random_official_generator
from sg3rt.networks.layers import FirFilter

RESULTS = Path(__file__).resolve().parent / "results"
ITERS = 7  # timed calls per form; the median is reported


def time_ms(fn, device: torch.device, iters: int = ITERS) -> float:
    fn()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def fir_inputs(G, ws: torch.Tensor, layers: list[str], precision: str) -> dict[str, tuple[FirFilter, torch.Tensor, torch.Tensor]]:
    """'L10_1044_161.up' -> (filter module, its filter taps, an input of the shape it really sees)."""
    seen = {}
    hooks = []
    for name in layers:
        layer = getattr(G.synthesis, name)
        for part, module, taps in (("up", layer.upsample, layer.up_filter), ("down", layer.downsample, layer.down_filter)):
            if module is None:
                continue

            def hook(mod, args, key=f"{name}.{part}", taps=taps):
                seen[key] = (mod, taps, torch.randn_like(args[0]))

            hooks.append(module.register_forward_pre_hook(hook))
    with torch.inference_mode():
        G.synthesis(ws, precision=precision)
    for h in hooks:
        h.remove()
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--res", type=int, default=1024)
    parser.add_argument("--kind", default="stylegan3-r")
    parser.add_argument("--precision", default="fp16", choices=["fp32", "fp16"])
    parser.add_argument("--layers", type=int, default=4, help="how many of the last synthesis layers (before toRGB)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    G = random_official_generator(args.kind, args.res).to(device)
    ws = G.mapping(torch.randn(1, G.z_dim, device=device), None)
    names = G.synthesis.layer_names[-args.layers - 1:-1]
    rows = []
    print(f"{args.kind} {args.res}px {args.precision} on {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}")
    print(f"{'filter':<20} {'input':<22} {'taps':>4} {'2-D':>4} {'conv ms':>8} {'matmul ms':>9} {'speed-up':>8} {'max diff':>9}")
    with torch.inference_mode():
        for key, (mod, taps, x) in fir_inputs(G, ws, names, args.precision).items():
            impl = mod.impl
            out = {}
            for form in ("conv", "matmul"):
                mod.impl = form
                out[form] = (time_ms(lambda: mod(x, taps), device), mod(x, taps).float())
            mod.impl = impl
            diff = float((out["conv"][1] - out["matmul"][1]).abs().max())
            conv_ms, matmul_ms = out["conv"][0], out["matmul"][0]
            rows.append({"filter": key, "input": list(x.shape), "dtype": str(x.dtype), "taps": mod.taps,
                         "radial": not mod.separable, "up": mod.up, "down": mod.down, "conv_ms": conv_ms,
                         "matmul_ms": matmul_ms, "max_abs_diff": diff})
            print(f"{key:<20} {str(list(x.shape)):<22} {mod.taps:>4} {'yes' if not mod.separable else 'no':>4} "
                  f"{conv_ms:>8.2f} {matmul_ms:>9.2f} {conv_ms / matmul_ms:>7.2f}x {diff:>9.2e}")
    RESULTS.mkdir(exist_ok=True)
    out_path = RESULTS / f"bench_fir_{device.type}.json"
    meta = {"config": f"{args.kind}-{args.res} random weights", "precision": args.precision, "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None, "torch": torch.__version__,
            "iters": ITERS, "rows": rows}
    out_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
