"""Export forms: how a Generator's FIR filters are written into an ONNX graph for one runtime target.

The numbers are the same in every form (each export is verified against the torch network); what
changes is which ops carry them, because runtimes differ in which ops they run fast (issue 13):
- "conv" (portable): depthwise ConvTranspose upsampling and depthwise Conv downsampling, as the torch
  network runs on a CPU. cuDNN (ONNX Runtime CUDA) and TensorRT run these directly.
- "polyphase" (ONNX Runtime CPU): upsampling as a banded MatMul along x and stride-1 polyphase depthwise
  Convs along y interleaved by rows (fir.upsample_matmul_polyphase), and the depthwise filters of every
  StyleGAN3 layer on channels zero-padded to a multiple of 16: ORT's CPU ConvTranspose with groups=C
  loops over channels, and its NCHWc depthwise kernels want channel counts that are multiples of the
  vector width (a 23-channel downsample at 256 px took 46.1 ms, a 32-channel one 4.5 ms).
- "merged" (ONNX Runtime CPU, the target's form): "polyphase", and every StyleGAN3 layer runs upsampling,
  activation and downsampling without building the upsampled map (fir.filtered_activation_ort_cpu): the
  upsampling phases (rows, and columns too where that is faster) go straight into the down-filter as
  stride-1 depthwise Convs summed per output phase, the activation runs on each phase in ops ORT keeps in
  its blocked layout, and crops move to the smaller output (sg3r_256 layers 25-45 % faster in ORT).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from torch import nn

from .layers import FirFilter


@dataclass(frozen=True)
class FirForm:
    """One way of writing the FIR filters of a network."""

    upsample: str  # FirFilter.impl of upsampling filters: "conv" | "polyphase" | "merged"
    channel_multiple: int  # depthwise filters run on channels zero-padded to this multiple (1 = none)


FIR_FORMS = {
    "conv": FirForm("conv", 1),
    "polyphase": FirForm("polyphase", 16),  # 16 fp32 lanes: AVX-512 (ORT's NCHWc block size)
    "merged": FirForm("merged", 16),
}


@contextmanager
def fir_form(G: nn.Module, form: str) -> Iterator[nn.Module]:
    """Inside the block, G's FIR filters run in `form` (for tracing); their settings are restored after."""
    if form not in FIR_FORMS:
        raise ValueError(f"unknown FIR form {form!r} (one of {', '.join(FIR_FORMS)})")
    spec = FIR_FORMS[form]
    filters = [m for m in G.modules() if isinstance(m, FirFilter)]
    saved = [(m.impl, m.channel_multiple) for m in filters]
    try:
        for m in filters:
            m.impl = spec.upsample if m.up > 1 else "conv"
            # Only StyleGAN3 layers pad (they pad once around up, lrelu and down); other filters keep C.
            m.channel_multiple = spec.channel_multiple if _in_stylegan3_layer(G, m) else 1
        yield G
    finally:
        for m, (impl, multiple) in zip(filters, saved):
            m.impl, m.channel_multiple = impl, multiple


def _in_stylegan3_layer(G: nn.Module, f: FirFilter) -> bool:
    from .stylegan3 import SynthesisLayer

    return any(isinstance(m, SynthesisLayer) and f in (m.upsample, m.downsample) for m in G.modules())
