"""PyTorch backend: the Generator itself, eager, on CPU or CUDA, fp32 or fp16."""

from __future__ import annotations

import torch

from ..errors import BackendUnavailableError
from ..networks import Generator
from .base import Runtime


class TorchRuntime(Runtime):
    backend = "torch"

    def __init__(self, G: Generator, device: str | torch.device = "cpu", precision: str = "fp32"):
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError("PyTorch CUDA requested but no CUDA GPU is available to torch")
        G = G.to(device).eval().requires_grad_(False)
        G.set_precision(precision)
        super().__init__(G.summary(), G.w_avg, device, precision)
        self.G = G

    @torch.inference_mode()
    def _mapping(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return self.G.mapping(z, c)

    @torch.inference_mode()
    def _synthesis(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        return self.G.synthesis(ws, transforms=transforms, noise_mode=noise_mode)
