"""Images -> video frames: the one quantisation every path shares (PyTorch, the exported graphs, writers)."""

from __future__ import annotations

import torch


def to_uint8_frames(img: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] float in about [-1, 1] -> [B, H, W, C] uint8, as the official tools quantise."""
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
