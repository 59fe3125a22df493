"""Mapping network z (+ class label) -> w, shared by StyleGAN2 and StyleGAN3 (Karras et al. 2019)."""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from ..errors import InputError
from .layers import FullyConnected, assert_shape, normalize_2nd_moment


class MappingNetwork(nn.Module):
    """An MLP from normalised z (and an embedded label) to one w, broadcast to every synthesis layer."""

    def __init__(
        self,
        z_dim: int,  # latent z width (0 = label only)
        c_dim: int,  # class label width (0 = unconditional)
        w_dim: int,  # intermediate latent w width
        num_ws: int,  # how many copies of w the synthesis network consumes
        num_layers: int = 8,  # MLP depth (StyleGAN2: 8, StyleGAN3: 2)
        embed_features: int | None = None,  # label embedding width (default w_dim)
        layer_features: int | None = None,  # hidden width (default w_dim)
        lr_multiplier: float = 0.01,  # equalised-lr multiplier of the MLP
        w_avg_beta: float | None = 0.998,  # training-time EMA decay of w_avg (kept for the config only)
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        embed_features = (w_dim if embed_features is None else embed_features) if c_dim > 0 else 0
        layer_features = w_dim if layer_features is None else layer_features
        if c_dim > 0:
            self.embed = FullyConnected(c_dim, embed_features)
        widths = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        for idx in range(num_layers):
            layer = FullyConnected(widths[idx], widths[idx + 1], "lrelu", lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor,  # [B, z_dim]
        c: torch.Tensor | None = None,  # [B, c_dim]
        truncation_psi: float = 1.0,  # 1 = untruncated; pulls w towards w_avg below 1
        truncation_cutoff: int | None = None,  # truncate only the first layers (None = all)
    ) -> torch.Tensor:  # [B, num_ws, w_dim]
        parts = []
        if self.z_dim > 0:
            assert_shape(z, [None, self.z_dim], "z")
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            if c is None:
                raise InputError(f"this network is conditional: pass a class label c of width {self.c_dim}")
            assert_shape(c, [None, self.c_dim], "c")
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        return truncate(ws, self.w_avg, truncation_psi, truncation_cutoff)


MAX_PSI = 100.0  # |truncation psi| above this is a typo (beyond about 3 the images are noise; 1e39 overflows fp32)


def truncate(
    ws: torch.Tensor,  # [B, num_ws, w_dim]
    w_avg: torch.Tensor,  # [w_dim]
    psi: float,  # 1 = no truncation, 0 = the average w
    cutoff: int | None = None,  # truncate only the first `cutoff` layers (None = all)
) -> torch.Tensor:  # [B, num_ws, w_dim]
    """The truncation trick: pull w towards the average, written with a mask instead of slice assignment."""
    num_ws = ws.shape[1]
    if isinstance(psi, bool) or not isinstance(psi, numbers.Real) or not math.isfinite(psi):
        raise InputError(f"truncation psi must be a finite number, got {psi!r}")
    if abs(psi) > MAX_PSI:
        raise InputError(f"truncation psi must be between -{MAX_PSI:g} and {MAX_PSI:g}, got {psi:g}")
    if cutoff is not None and (isinstance(cutoff, bool) or not isinstance(cutoff, numbers.Integral)):
        raise InputError(f"truncation cutoff must be an integer or None, got {cutoff!r}")
    if cutoff is not None and not 0 <= cutoff <= num_ws:
        raise InputError(f"truncation cutoff must be between 0 and {num_ws}, got {cutoff}")
    if psi == 1.0:
        return ws
    layer_psi = torch.full([num_ws], float(psi), dtype=ws.dtype, device=ws.device)
    if cutoff is not None:
        layer_psi[cutoff:] = 1.0
    layer_psi = layer_psi.reshape(1, num_ws, 1)
    w_avg = w_avg.to(ws.dtype).reshape(1, 1, -1)
    return w_avg + (ws - w_avg) * layer_psi
