"""PyTorch backend: the Generator itself, eager, on CPU or CUDA, fp32 or fp16 (optionally CUDA graphs).

The caller's Generator is never changed: on its own device it is used as it is (precision is passed
per call); on another device the runtime works on its own copy.
"""

from __future__ import annotations

import copy
import warnings
from contextlib import contextmanager, nullcontext
from typing import ContextManager, Iterator

import torch

from ..errors import BackendUnavailableError, DeviceMemoryError, InputError
from ..networks import Generator, on_device, set_fir_impl, to_uint8_frames
from ..vocab import FIR_IMPLS, TORCH_PRECISIONS, check_choice, check_precision
from .base import Runtime
from .cpu_allocator import keep_cpu_memory
from .cuda_graph import CapturedCall

# On a CPU, batches paid only once glibc kept its heap across calls (cpu_allocator.py): before, a batch of 8
# at 256 px cost 1092 ms against 8 x 49 ms one image at a time, most of it page faults (65,600 per image at
# batch 4). With the heap kept (0 faults), sg3r_256 at batch 4 ran 1352 ms/image against 3121 at batch 1 on
# this busy shared 2-core machine (load 11, benchmarks/results/cpu_batch.json); issue 13 measured 51.4 vs
# 47.8 on a quiet one. Above CPU_BATCH_MAX_RES a batch's activations take GiBs, so those run one at a time.
CPU_SYNTHESIS_CHUNK = 4  # images per synthesis call on a CPU, up to CPU_BATCH_MAX_RES
CPU_BATCH_MAX_RES = 256  # larger images run one per call on a CPU (a 1024 px image alone needs GiBs)
CPU_LOW_PRECISION_COST = {  # what the warning says a reduced precision costs on a CPU (sg3r_64 on 2 cores: fp32 0.49 s
    # per image with the CPU kernels, fp16 20.9 s, bf16 16.3 s: the plain convolutions in emulated low precision)
    "fp16": "about 40x slower than fp32 here", "bf16": "about 30x slower than fp32 here, without AVX-512 BF16"}
MAX_CUDA_GRAPHS = 4  # captured (images or frames, batch, transform or not, noise) variants kept; others run eagerly


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


_WARNED: set[str] = set()  # messages already shown in this process


def warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


class TorchRuntime(Runtime):
    backend = "torch"

    def __init__(self, G: Generator, device: str | torch.device = "cpu", precision: str = "fp32",
                 cuda_graphs: bool = False, fir: str | None = None):
        """fir: how the layers filter (vocab.FIR_IMPLS; None keeps the network's setting, "auto" by default):
        "fused" runs one Triton kernel per StyleGAN3 layer on CUDA, "matmul" / "conv" the unfused forms."""
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError("PyTorch CUDA requested but no CUDA GPU is available to torch")
        if cuda_graphs and device.type != "cuda":
            raise InputError(f"CUDA graphs need a CUDA device, not {device}")
        check_precision(precision, TORCH_PRECISIONS, "PyTorch")
        if device.type == "cpu" and precision != "fp32":
            warn_once(f"{precision} on a CPU is emulated and slow ({CPU_LOW_PRECISION_COST[precision]}): use fp32 on CPUs")
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        super().__init__(G.summary(), G.w_avg, device, precision)
        self.G = on_device(G, device)
        if fir is not None:
            check_choice(fir, FIR_IMPLS, "FIR implementation")
            self.G = set_fir_impl(copy.deepcopy(self.G) if self.G is G else self.G, fir)  # the caller's G keeps its own
        self.cuda_graphs = cuda_graphs
        self.graphs: dict[tuple, CapturedCall | None] = {}  # None: capture ran out of memory, run eagerly
        # Largest batch per synthesis call; None = any. A GPU that runs out of memory halves it.
        self.chunk: int | None = None
        if device.type == "cpu":
            self.chunk = CPU_SYNTHESIS_CHUNK if G.img_resolution <= CPU_BATCH_MAX_RES else 1
        if device.type == "cpu":
            keep_cpu_memory()  # batches reuse the heap instead of faulting their pages in again (cpu_allocator.py)

    def _numerics(self) -> ContextManager[None]:
        return ieee_fp32() if self.device.type == "cuda" and self.precision == "fp32" else nullcontext()

    @torch.inference_mode()
    def _mapping(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        with self._numerics():
            return self.G.mapping(z, c)

    @torch.inference_mode()
    def _synthesis(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        if ws.shape[0] == 0:  # an empty batch is an empty result (as ONNX Runtime gives), not a chunk size of 0
            return torch.zeros([0, self.img_channels, self.height, self.width], device=self.device)
        with self._numerics():
            if self.cuda_graphs:
                return self._replay(False, ws, transforms, noise_mode)
            return self._chunked(ws, transforms, noise_mode)

    def _chunked(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        """Synthesis in calls of at most self.chunk images; out of memory, halve the chunk and retry.

        At 1024 px a StyleGAN3-R image needs about 3.1 GiB in fp16 (H100, benchmarks/bench_gpu.py), so
        the default render batch of 8 does not fit a 24 GiB card: it then runs 4 or 2 at a time.
        """
        size = min(ws.shape[0], self.chunk or ws.shape[0])
        while True:
            try:
                return self._in_chunks(size, ws, transforms, noise_mode)
            except torch.cuda.OutOfMemoryError:
                pass  # leave the except block first: its traceback holds the failed call's tensors
            torch.cuda.empty_cache()
            if size == 1:
                raise DeviceMemoryError(
                    f"out of {self.device} memory for one {self.img_resolution} px image in {self.precision}: "
                    "try --precision fp16, close other GPU programs, or use a larger GPU")
            failed, size = size, size // 2
            self.chunk = size
            warnings.warn(f"out of {self.device} memory at batch {failed}: synthesising {size} images at a time",
                          RuntimeWarning, stacklevel=2)

    def _run_synthesis(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        return self.G.synthesis(ws, transforms=transforms, noise_mode=noise_mode, precision=self.precision)

    def _in_chunks(self, size: int, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        chunks = []
        for i in range(0, ws.shape[0], size):
            t = None if transforms is None else transforms[i : i + size]
            chunks.append(self._run_synthesis(ws[i : i + size], t, noise_mode))
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)

    @torch.inference_mode()
    def _frames(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        if not self.cuda_graphs or ws.shape[0] == 0:
            return super()._frames(ws, transforms, noise_mode)
        with self._numerics():
            return self._replay(True, ws, transforms, noise_mode)

    def _replay(self, frames: bool, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        """Images (or uint8 frames) from a graph captured at this batch on first use, copied out."""

        def run(ws: torch.Tensor, transforms: torch.Tensor | None = None) -> torch.Tensor:
            img = self._run_synthesis(ws, transforms, noise_mode)
            return to_uint8_frames(img) if frames else img

        inputs = [ws] if transforms is None else [ws, transforms.contiguous()]
        key = (frames, ws.shape[0], transforms is None, noise_mode)
        if key not in self.graphs and len(self.graphs) < MAX_CUDA_GRAPHS:
            self.graphs[key] = None  # stays None if the capture runs out of memory
            try:
                self.graphs[key] = CapturedCall(run, inputs)
            except torch.cuda.OutOfMemoryError:
                pass
            if self.graphs[key] is None:
                torch.cuda.empty_cache()
        call = self.graphs.get(key)
        if call is None:  # not captured: eager, in chunks that fit
            img = self._chunked(ws, transforms, noise_mode)
            return to_uint8_frames(img) if frames else img
        return call(*inputs).clone()

    def _release(self) -> None:
        self.graphs = {}
        self.G = None
