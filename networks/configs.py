"""Official StyleGAN3 configs (T and R at 256/512/1024), to build random-weight networks for speed tests.

The numbers are those of NVIDIA's pretrained networks (train.py: `--cfg stylegan3-t|r`, `--cbase`,
`--cmax`; config R doubles channel_base and channel_max and uses 1x1 convs with radial filters).
256px networks were trained with `--cbase=16384`. Weights are random: fine for speed and memory,
meaningless as images.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import InputError
from .generator import Generator

OFFICIAL_RESOLUTIONS = (256, 512, 1024)  # resolutions NVIDIA released StyleGAN3 networks at
OFFICIAL_KINDS = ("stylegan3-t", "stylegan3-r")
BENCH_KINDS = OFFICIAL_KINDS + ("stylegan2",)  # official-size networks the GPU benchmark builds
STYLEGAN2_MAPPING_LAYERS = 8  # the released StyleGAN2 networks (config F)


def official_config(kind: str, resolution: int) -> dict[str, Any]:
    """Init kwargs of the official generator of this kind (StyleGAN3-T/R, StyleGAN2 config F) and resolution."""
    if kind not in BENCH_KINDS:
        raise InputError(f"official configs exist for {', '.join(BENCH_KINDS)}, not {kind!r}")
    if resolution not in OFFICIAL_RESOLUTIONS:
        raise InputError(f"official resolutions are {', '.join(map(str, OFFICIAL_RESOLUTIONS))}, not {resolution}")
    cbase = 16384 if resolution == 256 else 32768  # train.py --cbase
    cmax = 512  # train.py --cmax
    config: dict[str, Any] = {
        "z_dim": 512,  # latent width
        "c_dim": 0,  # unconditional
        "w_dim": 512,  # intermediate latent width
        "img_resolution": resolution,
        "img_channels": 3,
        "mapping_kwargs": {"num_layers": 2},  # train.py --map default for StyleGAN3
        "channel_base": cbase,
        "channel_max": cmax,
        "num_fp16_res": 4,  # train.py: fp16 in the 4 highest-resolution layer groups
        "conv_clamp": 256,  # train.py: activation clamp that makes fp16 safe
        "magnitude_ema_beta": 0.999,  # (training only)
    }
    if kind == "stylegan2":
        del config["magnitude_ema_beta"]
        config.update(mapping_kwargs={"num_layers": STYLEGAN2_MAPPING_LAYERS}, channel_base=32768)
    if kind == "stylegan3-r":
        config.update(channel_base=cbase * 2, channel_max=cmax * 2, conv_kernel=1, use_radial_filters=True)
    return config


def random_official_generator(kind: str, resolution: int, seed: int = 0) -> Generator:
    """An official-size network (BENCH_KINDS) with random weights (deterministic per seed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = Generator(kind, official_config(kind, resolution))
    return G.eval().requires_grad_(False)


def official_layers() -> list[tuple[str, Any]]:
    """One synthesis layer per distinct (sizes, factors, filter shapes, padding, role) of the official T/R
    configs, named like "R1024-L13_1044_32" (kind, resolution, layer). Two channels everywhere: channel
    counts change no filter, size or padding. What the fused op's tests and its compile checks cover."""
    from .stylegan3 import SynthesisNetwork

    found: dict[tuple, tuple[str, Any]] = {}
    for kind in OFFICIAL_KINDS:
        for res in OFFICIAL_RESOLUTIONS:
            cfg = official_config(kind, res)
            kw = {k: cfg[k] for k in ("num_fp16_res", "conv_clamp", "conv_kernel", "use_radial_filters") if k in cfg}
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(res)
                net = SynthesisNetwork(16, res, 3, channel_base=4096, channel_max=2, **kw)
            for name in net.layer_names:
                layer = getattr(net, name)
                shape = lambda f: None if f is None else tuple(f.shape)  # noqa: E731
                key = (layer.in_size + layer.conv_kernel - 1, layer.out_size, layer.up, layer.down,
                       shape(layer.up_filter), shape(layer.down_filter), layer.padding, layer.is_torgb)
                found.setdefault(key, (f"{kind[-1].upper()}{res}-{name}", layer))
    return list(found.values())


def official_stylegan2_layers() -> list[tuple[str, Any]]:
    """One StyleGAN2 synthesis layer per distinct (resolution, upsampling) of the official config F at 256, 512
    and 1024 px, named like "F1024-b1024.conv0". Two channels everywhere (channels change no size or filter).
    What the fused StyleGAN2 epilogue's tests cover."""
    from .stylegan2 import SynthesisNetwork

    found: dict[tuple, tuple[str, Any]] = {}
    for res in OFFICIAL_RESOLUTIONS:
        cfg = official_config("stylegan2", res)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(res)
            net = SynthesisNetwork(16, res, 3, channel_base=4096, channel_max=2, num_fp16_res=cfg["num_fp16_res"],
                                   conv_clamp=cfg["conv_clamp"])
        for block_res in net.block_resolutions:
            block = getattr(net, f"b{block_res}")
            for name in ("conv0", "conv1"):
                layer = getattr(block, name, None)
                if layer is not None:
                    found.setdefault((layer.resolution, layer.up), (f"F{res}-b{block_res}.{name}", layer))
    return list(found.values())
