"""PyTorch backend: the Generator itself, eager, on CPU or CUDA, fp32 or fp16 (optionally CUDA graphs)."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Callable, ContextManager, Iterator

import torch

from ..errors import BackendUnavailableError, InputError
from ..networks import Generator
from .base import Runtime, to_uint8_frames
from .cuda_graph import CapturedCall

# On a CPU the synthesis layers are memory-bound: a batch of 8 at 256 px costs 1092 ms against 8 x 49 ms
# one image at a time (sg3r_256, 2 cores, benchmarks/bench_networks.py), so CPU batches run in chunks.
CPU_SYNTHESIS_CHUNK = 1  # images per synthesis call on a CPU
MAX_CUDA_GRAPHS = 4  # captured (operation, batch, noise) variants kept; others run eagerly


@contextmanager
def ieee_fp32() -> Iterator[None]:
    """TF32 off for cuBLAS matmuls and cuDNN convolutions inside the block (restored after).

    PyTorch lets cuDNN convolutions use TF32 by default (10-bit mantissa): on an H100 that moved the
    references' images by up to 7e-3. An fp32 runtime promises float32, so it turns TF32 off.
    """
    # torch >= 2.9 has per-backend fp32_precision; reading the legacy allow_tf32 flags raises once a
    # user has set the new ones, so the new API is used wherever it exists.
    if hasattr(torch.backends.cuda.matmul, "fp32_precision") and hasattr(torch.backends.cudnn, "conv"):
        flags, off = (torch.backends.cuda.matmul, torch.backends.cudnn.conv), "ieee"
        name = "fp32_precision"
    else:
        flags, off = (torch.backends.cuda.matmul, torch.backends.cudnn), False
        name = "allow_tf32"
    saved = [getattr(f, name) for f in flags]
    for f in flags:
        setattr(f, name, off)
    try:
        yield
    finally:
        for f, value in zip(flags, saved):
            setattr(f, name, value)


class TorchRuntime(Runtime):
    backend = "torch"

    def __init__(self, G: Generator, device: str | torch.device = "cpu", precision: str = "fp32",
                 cuda_graphs: bool = False):
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError("PyTorch CUDA requested but no CUDA GPU is available to torch")
        if cuda_graphs and device.type != "cuda":
            raise InputError(f"CUDA graphs need a CUDA device, not {device}")
        G = G.to(device).eval().requires_grad_(False)
        G.set_precision(precision)
        super().__init__(G.summary(), G.w_avg, device, precision)
        self.G = G
        self.cuda_graphs = cuda_graphs
        self.graphs: dict[tuple, CapturedCall] = {}

    def _numerics(self) -> ContextManager[None]:
        return ieee_fp32() if self.device.type == "cuda" and self.precision == "fp32" else nullcontext()

    @torch.inference_mode()
    def _mapping(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        with self._numerics():
            return self.G.mapping(z, c)

    @torch.inference_mode()
    def _synthesis(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        with self._numerics():
            return self._synthesis_impl(ws, transforms, noise_mode)

    def _synthesis_impl(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        if self.cuda_graphs:
            return self._replay("img", self.G.synthesis, ws, transforms, noise_mode)
        if self.device.type != "cpu" or ws.shape[0] <= CPU_SYNTHESIS_CHUNK:
            return self.G.synthesis(ws, transforms=transforms, noise_mode=noise_mode)
        chunks = []
        for i in range(0, ws.shape[0], CPU_SYNTHESIS_CHUNK):
            t = None if transforms is None else transforms[i : i + CPU_SYNTHESIS_CHUNK]
            chunks.append(self.G.synthesis(ws[i : i + CPU_SYNTHESIS_CHUNK], transforms=t, noise_mode=noise_mode))
        return torch.cat(chunks)

    @torch.inference_mode()
    def _frames(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        if not self.cuda_graphs:
            return super()._frames(ws, transforms, noise_mode)

        def frames(ws: torch.Tensor, transforms: torch.Tensor | None = None, noise_mode: str = "const") -> torch.Tensor:
            return to_uint8_frames(self.G.synthesis(ws, transforms=transforms, noise_mode=noise_mode))

        with self._numerics():
            return self._replay("frames", frames, ws, transforms, noise_mode)

    def _replay(self, op: str, fn: Callable[..., torch.Tensor], ws: torch.Tensor, transforms: torch.Tensor | None,
                noise_mode: str) -> torch.Tensor:
        """fn(ws, transforms) from a graph captured at this batch (captured on first use), copied out."""
        inputs = [ws] if transforms is None else [ws, transforms.contiguous()]
        key = (op, ws.shape[0], transforms is None, noise_mode)
        call = self.graphs.get(key)
        if call is None:
            if len(self.graphs) >= MAX_CUDA_GRAPHS:
                return fn(ws, transforms, noise_mode=noise_mode)
            call = self.graphs[key] = CapturedCall(lambda *xs: fn(*xs, noise_mode=noise_mode), inputs)
        return call(*inputs).clone()

    def close(self) -> None:
        self.graphs = {}
