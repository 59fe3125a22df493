"""Replay a computation from a CUDA graph: one launch instead of hundreds at small batches.

At batch 1 a 1024 px StyleGAN3 synthesis is a few hundred small kernels; launching them from Python
costs about as much as running them. A captured graph replays them all with one call. Shapes are
frozen at capture, so a runtime keeps one graph per (operation, batch) and falls back to eager
execution for anything else. The one capture for every backend: PyTorch work and TensorRT's
execute_async_v3 on torch's current stream are recorded alike.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

CAPTURE_WARMUP = 2  # eager runs on a side stream before capture (cuDNN autotune, allocator, lazy init)


class CapturedCall:
    """fn(*inputs) -> tensor(s), recorded once at the shapes of `example`; calling it copies the inputs
    into static buffers and replays. The result is the graph's static output (whatever fn returned:
    a tensor, a tuple or a dict of them): copy it before the next call if it must outlive that call.
    fn must run its device work on torch's current stream."""

    def __init__(self, fn: Callable[..., Any], example: list[torch.Tensor]):
        device = example[0].device
        assert device.type == "cuda", "CUDA graphs need CUDA tensors"
        self.static_inputs = [t.detach().clone() for t in example]
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(CAPTURE_WARMUP):
                fn(*self.static_inputs)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_output = fn(*self.static_inputs)

    def __call__(self, *inputs: torch.Tensor) -> Any:
        for static, t in zip(self.static_inputs, inputs, strict=True):
            static.copy_(t)
        self.graph.replay()
        return self.static_output
