"""Images/s of our PyTorch generators vs batch size (synthesis + mapping), on this machine's CPU or GPU.

    python benchmarks/bench_networks.py [--device cpu] [--batches 1,2,4,8] [--repeats 5]

Prints a table and writes benchmarks/results/networks_<device>.json. Figures are medians over
`--repeats` timed runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from refdata import reference_file  # noqa: E402
from sg3rt import __version__, load_generator  # noqa: E402

NETWORKS = ["sg2_64", "sg3t_64_cond", "sg3r_64", "sg3r_256"]  # the reference networks (64 and 256 px)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def time_batch(G, batch: int, device: torch.device, repeats: int) -> float:
    """Median seconds for one generator call on `batch` latents."""
    z = torch.randn(batch, G.z_dim, device=device)
    c = torch.eye(G.c_dim, device=device)[torch.arange(batch) % G.c_dim] if G.c_dim else None
    G(z, c)  # warm-up
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        G(z, c)
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", default="1,2,4,8")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--networks", default=",".join(NETWORKS))
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batches = [int(b) for b in args.batches.split(",")]
    rows = []
    print(f"{'network':<14} {'kind':<12} {'res':>4} {'batch':>5} {'ms/batch':>9} {'img/s':>8}")
    for name in args.networks.split(","):
        G = load_generator(reference_file(f"{name}.pkl"), device=device)
        for batch in batches:
            seconds = time_batch(G, batch, device, args.repeats)
            row = {"network": name, "kind": G.kind, "resolution": G.img_resolution, "batch": batch,
                   "ms_per_batch": seconds * 1e3, "images_per_s": batch / seconds}
            rows.append(row)
            print(f"{name:<14} {G.kind:<12} {G.img_resolution:>4} {batch:>5} {row['ms_per_batch']:>9.1f} "
                  f"{row['images_per_s']:>8.1f}")
    out = HERE / "results" / f"networks_{device.type}.json"
    out.parent.mkdir(exist_ok=True)
    meta = {"sg3rt": __version__, "torch": torch.__version__, "device": str(device),
            "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "repeats": args.repeats, "statistic": "median"}
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
