"""The embedded default network: a small StyleGAN3-R built deterministically in code.

sg3rt ships no trained weights (and downloads none), so `sg3rt render` without `--network` uses this:
random weights from a fixed seed, with each layer's input gain calibrated on a batch of latents the
way training's magnitude EMA would set it, so the images are structured abstract patterns with full
contrast. It is a real StyleGAN3-R (radial filters, 1x1 convs, equivariant), just untrained.
"""

from __future__ import annotations

import functools

import torch

from .generator import Generator

DEFAULT_SEED = 20211011  # fixes the weights of the default network
DEFAULT_CONFIG = {
    "z_dim": 64,  # latent width
    "c_dim": 0,  # unconditional
    "w_dim": 128,  # intermediate latent width
    "img_resolution": 128,  # output size in pixels
    "img_channels": 3,  # RGB
    "mapping_kwargs": {"num_layers": 2},  # StyleGAN3's mapping depth
    "channel_base": 8192,  # channels = min(base / 2 / cutoff, max)
    "channel_max": 64,  # small enough for real-time on a CPU
    "conv_kernel": 1,  # config R: 1x1 convs
    "use_radial_filters": True,  # config R: radial jinc down-filters
    "magnitude_ema_beta": 0.999,  # (training only)
}
CALIBRATION_BATCH = 4  # latents used to set each layer's input gain
OUTPUT_STD = 0.4  # target standard deviation of the images (about [-1, 1] after clipping)


@torch.no_grad()
def _calibrate(G: Generator) -> None:
    """Set every layer's magnitude_ema to the mean square of its input, layer by layer."""
    z = torch.randn([CALIBRATION_BATCH, G.z_dim])
    ws = G.mapping(z)
    syn = G.synthesis
    x = syn.input(ws[:, 0], torch.eye(3).expand(CALIBRATION_BATCH, 3, 3))
    for i, name in enumerate(syn.layer_names):
        layer = getattr(syn, name)
        layer.magnitude_ema.copy_(x.square().mean())
        x = layer(x, ws[:, i + 1])
    # Per colour channel: zero mean and OUTPUT_STD spread, so no channel dominates the palette.
    torgb = getattr(syn, syn.layer_names[-1])
    img = x * syn.output_scale  # [B, C, H, W]
    scale = OUTPUT_STD / img.std(dim=[0, 2, 3])
    torgb.weight.mul_(scale.reshape(-1, 1, 1, 1))
    torgb.bias.copy_(-img.mean(dim=[0, 2, 3]) * scale / syn.output_scale)


@functools.lru_cache(maxsize=1)
def _default_state() -> dict[str, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(DEFAULT_SEED)
        G = Generator("stylegan3-r", DEFAULT_CONFIG)
        G.synthesis.input.affine.weight.data.zero_()  # official init: no per-w rotation at start
        _calibrate(G)
    return {k: v.clone() for k, v in G.state_dict().items()}


def default_generator() -> Generator:
    """A fresh copy of the embedded default network (same weights on every call and machine)."""
    G = Generator("stylegan3-r", DEFAULT_CONFIG)
    G.load_state_dict(_default_state())
    return G.eval().requires_grad_(False)
