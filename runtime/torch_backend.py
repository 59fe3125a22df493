"""PyTorch backend: the Generator itself, eager, on CPU or CUDA, fp32 or fp16."""

from __future__ import annotations

import torch

from ..errors import BackendUnavailableError
from ..networks import Generator
from .base import Runtime

# On a CPU the synthesis layers are memory-bound: a batch of 8 at 256 px costs 1092 ms against 8 x 49 ms
# one image at a time (sg3r_256, 2 cores, benchmarks/bench_networks.py), so CPU batches run in chunks.
CPU_SYNTHESIS_CHUNK = 1  # images per synthesis call on a CPU


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
        if self.device.type != "cpu" or ws.shape[0] <= CPU_SYNTHESIS_CHUNK:
            return self.G.synthesis(ws, transforms=transforms, noise_mode=noise_mode)
        chunks = []
        for i in range(0, ws.shape[0], CPU_SYNTHESIS_CHUNK):
            t = None if transforms is None else transforms[i : i + CPU_SYNTHESIS_CHUNK]
            chunks.append(self.G.synthesis(ws[i : i + CPU_SYNTHESIS_CHUNK], transforms=t, noise_mode=noise_mode))
        return torch.cat(chunks)
