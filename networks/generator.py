"""The Generator: mapping + synthesis of one architecture, built from official init kwargs.

Submodules keep the official names (`mapping`, `synthesis`, `synthesis.L0_36_512`, `synthesis.b4`...),
so an official state dict loads as it is and `G.mapping(z, c, psi)` / `G.synthesis(ws)` read as in the
official tools.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..errors import InputError, UnsupportedNetworkError
from ..vocab import KINDS, STYLEGAN2, is_stylegan3, parse_size
from . import stylegan2, stylegan3
from .mapping import MappingNetwork

BUILT_IN_CODE = "none (built in code)"  # file_format of a Generator not read from a file

# Official init kwargs that change nothing at inference; accepted and ignored.
_TRAINING_ONLY_KWARGS = {"fused_modconv_default", "magnitude_ema_beta", "channels_last", "fp16_channels_last"}
_MAPPING_KWARGS = {"num_layers", "embed_features", "layer_features", "lr_multiplier", "w_avg_beta", "activation"}


def kind_of(init_kwargs: dict[str, Any], is_stylegan3: bool) -> str:
    """The `kind` name: StyleGAN3 is R when its down-filters are radial, T otherwise."""
    if not is_stylegan3:
        return STYLEGAN2
    return "stylegan3-r" if init_kwargs.get("use_radial_filters", False) else "stylegan3-t"


class Generator(nn.Module):
    """z [B, z_dim] (+ c [B, c_dim]) -> ws [B, num_ws, w_dim] -> img [B, C, R, R] float32."""

    def __init__(self, kind: str, init_kwargs: dict[str, Any]):
        super().__init__()
        if kind not in KINDS:
            raise UnsupportedNetworkError(f"unknown network kind {kind!r} (known: {', '.join(KINDS)})")
        kw = dict(init_kwargs)
        try:
            self.z_dim, self.c_dim, self.w_dim = int(kw.pop("z_dim")), int(kw.pop("c_dim")), int(kw.pop("w_dim"))
            self.img_resolution, self.img_channels = int(kw.pop("img_resolution")), int(kw.pop("img_channels"))
        except KeyError as e:
            raise UnsupportedNetworkError(f"network config lacks {e.args[0]!r}") from None
        self.kind = kind
        self.init_kwargs = dict(init_kwargs)
        self.file_format = BUILT_IN_CODE  # what the weights were read from; load_generator sets it
        mapping_kwargs = dict(kw.pop("mapping_kwargs", {}) or {})
        unknown = set(mapping_kwargs) - _MAPPING_KWARGS
        if unknown or mapping_kwargs.pop("activation", "lrelu") != "lrelu":
            raise UnsupportedNetworkError(f"unsupported mapping options: {sorted(unknown) or 'activation'}")
        synthesis_kwargs = {k: v for k, v in kw.items() if k not in _TRAINING_ONLY_KWARGS}
        if kind == STYLEGAN2:
            self.synthesis = stylegan2.SynthesisNetwork(self.w_dim, self.img_resolution, self.img_channels, **synthesis_kwargs)
        else:
            self.synthesis = stylegan3.SynthesisNetwork(self.w_dim, self.img_resolution, self.img_channels, **synthesis_kwargs)
        mapping_kwargs.setdefault("num_layers", 8 if kind == STYLEGAN2 else 2)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(self.z_dim, self.c_dim, self.w_dim, self.num_ws, **mapping_kwargs)

    @property
    def w_avg(self) -> torch.Tensor:  # [w_dim]
        return self.mapping.w_avg

    @property
    def is_stylegan3(self) -> bool:
        return is_stylegan3(self.kind)

    @property
    def canvas(self) -> tuple[int, int] | None:
        """(width, height) of a with_canvas view; None for the network's own R x R image."""
        s = self.synthesis
        return (s.width, s.height) if isinstance(s, stylegan3.SynthesisCanvas) else None

    @property
    def width(self) -> int:  # of the images synthesis returns
        return self.canvas[0] if self.canvas else self.img_resolution

    @property
    def height(self) -> int:
        return self.canvas[1] if self.canvas else self.img_resolution

    def with_canvas(self, width: int, height: int) -> "Generator":
        """This network rendering width x height images (StyleGAN3): the same plane, more (or less) of it.

        Returns a Generator sharing this one's modules and weights (nothing is copied; this one is
        unchanged); the network's own size gives the plain network back.
        """
        width, height = parse_size((width, height))
        base = self.synthesis.synthesis if self.canvas else self.synthesis
        if (width, height) == (self.width, self.height):
            return self
        if (width, height) == (self.img_resolution, self.img_resolution):
            synthesis = base
        elif not self.is_stylegan3:
            raise InputError(f"a {width}x{height} canvas needs a StyleGAN3 network; this {self.kind} network renders "
                             f"only its own {self.img_resolution}x{self.img_resolution} (it is not translation-equivariant)")
        else:
            synthesis = stylegan3.SynthesisCanvas(base, width, height)
        if synthesis is self.synthesis:
            return self
        view = copy.copy(self)  # shallow: the module dicts are replaced below, the modules are shared
        view._modules = dict(self._modules)
        view._modules["synthesis"] = synthesis
        return view

    def forward(
        self,
        z: torch.Tensor,  # [B, z_dim]
        c: torch.Tensor | None = None,  # [B, c_dim] one-hot labels for conditional networks
        truncation_psi: float = 1.0,  # truncation strength
        truncation_cutoff: int | None = None,  # number of truncated layers (None = all)
        transforms: torch.Tensor | None = None,  # StyleGAN3 input transform [3, 3] or [B, 3, 3]
        noise_mode: str = "const",  # StyleGAN2 noise: const | random | none
        precision: str = "fp32",  # fp16 runs the high-resolution layers in float16, as the official networks
    ) -> torch.Tensor:  # [B, C, R, R]
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, transforms=transforms, noise_mode=noise_mode, precision=precision)

    def summary(self) -> dict[str, Any]:
        """What `sg3rt info` shows: the architecture in numbers."""
        layers = []
        synthesis = self.synthesis.synthesis if self.canvas else self.synthesis
        for name, module in synthesis.named_children():
            if name == "input":
                layers.append({"name": name, "channels": module.channels, "size": module.size})
            elif isinstance(module, stylegan3.SynthesisLayer):
                layers.append({"name": name, "channels": module.out_channels, "size": module.out_size,
                               "up": module.up, "down": module.down,
                               "fp16": module.use_fp16})
            elif isinstance(module, stylegan2.SynthesisBlock):
                layers.append({"name": name, "channels": module.conv1.out_channels, "size": module.resolution,
                               "convs": module.num_conv, "fp16": module.use_fp16})
        return {
            "kind": self.kind,
            "format": self.file_format,
            "img_resolution": self.img_resolution,
            "img_channels": self.img_channels,
            "width": self.width,  # of the images synthesis returns: the canvas, or img_resolution
            "height": self.height,
            "z_dim": self.z_dim,
            "c_dim": self.c_dim,
            "w_dim": self.w_dim,
            "num_ws": self.num_ws,
            "mapping_layers": self.mapping.num_layers,
            "params": sum(p.numel() for p in self.parameters()),
            "layers": layers,
        }


def on_device(G: Generator, device: torch.device | str) -> Generator:
    """G itself when all its tensors already live on `device`, else a copy there (G stays where it is)."""
    device = torch.device(device)
    if all(t.device == device for t in G.state_dict().values()):
        return G
    return copy.deepcopy(G).to(device)
