"""Feeds of the exported graphs, shared by the runtimes that run them (ONNX Runtime, TensorRT)."""

from __future__ import annotations

import torch

from ..export import OnnxContract
from ..vocab import batch_transforms


def synthesis_feed(
    contract: OnnxContract,
    ws: torch.Tensor,  # [B, num_ws, w_dim] on the runtime's device
    transforms: torch.Tensor | None,  # [B, 3, 3] or None (identity)
) -> dict[str, torch.Tensor]:
    """Inputs of synthesis.onnx by name: `ws`, and `transform` for StyleGAN3 (identity when None). (The StyleGAN2
    noise a call may ask for is the baked one: Runtime._noise_mode checks it before any backend runs.)"""
    feed = {"ws": ws}
    if contract.is_stylegan3:
        feed["transform"] = batch_transforms(transforms, ws.shape[0], device=ws.device)
    return feed
