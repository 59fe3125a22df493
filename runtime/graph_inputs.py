"""Feeds of the exported graphs, shared by the runtimes that run them (ONNX Runtime, TensorRT)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InputError
from ..export import OnnxContract
from ..vocab import batch_transforms


def synthesis_feed(
    contract: OnnxContract,
    export_dir: Path,
    ws: torch.Tensor,  # [B, num_ws, w_dim] on the runtime's device
    transforms: torch.Tensor | None,  # [B, 3, 3] or None (identity)
    noise_mode: str,  # must be the StyleGAN2 noise baked into the graph
) -> dict[str, torch.Tensor]:
    """Inputs of synthesis.onnx by name: `ws`, and `transform` for StyleGAN3 (identity when None)."""
    if not contract.is_stylegan3 and noise_mode != contract.noise_mode:
        raise InputError(f"{export_dir} has noise_mode={contract.noise_mode!r} baked in; "
                         f"re-export with `sg3rt export --noise {noise_mode}` for noise_mode={noise_mode!r}")
    feed = {"ws": ws}
    if contract.is_stylegan3:
        feed["transform"] = batch_transforms(transforms, ws.shape[0], device=ws.device)
    return feed
