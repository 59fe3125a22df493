"""Official StyleGAN3 configs (T and R at 256/512/1024), to build random-weight networks for speed tests.

The numbers are those of NVIDIA's pretrained networks (train.py: `--cfg stylegan3-t|r`, `--cbase`,
`--cmax`; config R doubles channel_base and channel_max and uses 1x1 convs with radial filters).
256px networks were trained with `--cbase=16384`. Weights are random: fine for speed and memory,
meaningless as images.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import InputError, UnsupportedNetworkError
from .generator import Generator

OFFICIAL_RESOLUTIONS = (256, 512, 1024)  # resolutions NVIDIA released StyleGAN3 networks at
OFFICIAL_KINDS = ("stylegan3-t", "stylegan3-r")
BENCH_KINDS = OFFICIAL_KINDS + ("stylegan2",)  # official-size networks the GPU benchmark builds
STYLEGAN2_MAPPING_LAYERS = 8  # the released StyleGAN2 networks (config F)

# Limits of a config read from a network file: far above every official network (numbers in brackets),
# so no real network is refused, while a crafted config fails in one line before anything is built.
MIN_RESOLUTION = 4  # pixels per side: StyleGAN2's first block is a 4x4 constant
MAX_RESOLUTION = 8192  # pixels per side (official: 1024)
MAX_IMG_CHANNELS = 16  # image channels (official: 3; 1 grayscale, 4 RGBA)
MAX_LATENT = 8192  # z_dim, w_dim and the mapping network's widths (official: 512)
MAX_CLASSES = 100_000  # c_dim, classes of a conditional network (ImageNet: 1000)
MAX_CHANNEL_BASE = 2**20  # channel_base (official: 16384 to 65536)
MAX_CHANNELS = 8192  # channel_max (official: 512; 1024 for StyleGAN3-R)
MAX_MAPPING_LAYERS = 64  # mapping num_layers (official: 2 for StyleGAN3, 8 for StyleGAN2)
MAX_FP16_RES = 64  # num_fp16_res (official: 4); only compared against resolutions
MAX_SYNTHESIS_LAYERS = 128  # StyleGAN3 num_layers (official: 14)
MAX_MARGIN = 1024  # StyleGAN3 margin_size, pixels (official: 10)
MAX_KERNEL = 15  # conv_kernel (StyleGAN3) and kernel_size (StyleGAN2) (official: 3, or 1 for R)
MAX_FILTER_SIZE = 32  # StyleGAN3 filter_size, taps per up/down factor (official: 6)
MAX_LRELU_UPSAMPLING = 8  # StyleGAN3 lrelu_upsampling (official: 2)
MAX_RESAMPLE_TAPS = 64  # StyleGAN2 resample_filter length (official: 4)

# (key, lowest, highest) of the whole-number options, by where they sit in the init kwargs
_COMMON_LIMITS = (("z_dim", 0, MAX_LATENT), ("c_dim", 0, MAX_CLASSES), ("w_dim", 1, MAX_LATENT),
                  ("img_resolution", MIN_RESOLUTION, MAX_RESOLUTION), ("img_channels", 1, MAX_IMG_CHANNELS),
                  ("channel_base", 1, MAX_CHANNEL_BASE), ("channel_max", 1, MAX_CHANNELS),
                  ("num_fp16_res", 0, MAX_FP16_RES))
_KIND_LIMITS = {
    "stylegan2": (("kernel_size", 1, MAX_KERNEL),),
    "stylegan3": (("num_layers", 1, MAX_SYNTHESIS_LAYERS), ("num_critical", 0, MAX_SYNTHESIS_LAYERS),
                  ("margin_size", 0, MAX_MARGIN), ("conv_kernel", 1, MAX_KERNEL),
                  ("filter_size", 1, MAX_FILTER_SIZE), ("lrelu_upsampling", 1, MAX_LRELU_UPSAMPLING)),
}
_MAPPING_LIMITS = (("num_layers", 1, MAX_MAPPING_LAYERS), ("embed_features", 1, MAX_LATENT),
                   ("layer_features", 1, MAX_LATENT))
# (key, must be > 0, may be None) of the real-valued options: finite, or they turn weights and images to NaN
_REAL_OPTIONS = (("conv_clamp", True, True), ("output_scale", False, False), ("first_cutoff", True, False),
                 ("first_stopband", True, False), ("last_stopband_rel", True, False))
_MAPPING_REAL_OPTIONS = (("lr_multiplier", True, False),)


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


def _check_whole(kwargs: dict[str, Any], limits: tuple[tuple[str, int, int], ...], where: str) -> None:
    for key, low, high in limits:
        value = kwargs.get(key)
        if value is None:  # absent (the architecture's default) or an official None (embed_features)
            continue
        whole = (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())
        if not whole or not low <= value <= high:
            raise UnsupportedNetworkError(f"{where}{key} must be a whole number from {low} to {high}, got {value!r}")


def _check_real(kwargs: dict[str, Any], options: tuple[tuple[str, bool, bool], ...], where: str) -> None:
    for key, positive, may_be_none in options:
        if key not in kwargs or (kwargs[key] is None and may_be_none):
            continue
        value = kwargs[key]
        real = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not real or (positive and value <= 0):
            raise UnsupportedNetworkError(f"{where}{key} must be a finite number{' > 0' if positive else ''}, got {value!r}")


def check_config(kind: str, init_kwargs: dict[str, Any]) -> None:
    """Refuse, in one line, a file's config beyond the limits above, before a network is built from it:
    building allocates per the config, and a crafted config could otherwise ask for terabytes."""
    _check_whole(init_kwargs, _COMMON_LIMITS, "")
    _check_whole(init_kwargs, _KIND_LIMITS["stylegan2" if kind == "stylegan2" else "stylegan3"], "")
    mapping = init_kwargs.get("mapping_kwargs") or {}
    if not isinstance(mapping, dict):
        raise UnsupportedNetworkError(f"mapping_kwargs must be a mapping, got {type(mapping).__name__}")
    _check_whole(mapping, _MAPPING_LIMITS, "mapping_kwargs.")
    _check_real(init_kwargs, _REAL_OPTIONS, "")
    _check_real(mapping, _MAPPING_REAL_OPTIONS, "mapping_kwargs.")
    if init_kwargs.get("z_dim", 1) == 0 and init_kwargs.get("c_dim", 1) == 0:
        raise UnsupportedNetworkError("z_dim and c_dim are both 0: the mapping network has no input")
    taps = init_kwargs.get("resample_filter")
    if isinstance(taps, (list, tuple)) and not 1 <= len(taps) <= MAX_RESAMPLE_TAPS:
        raise UnsupportedNetworkError(f"resample_filter must have 1 to {MAX_RESAMPLE_TAPS} taps, got {len(taps)}")


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
