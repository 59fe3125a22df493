"""Fused epilogue of one StyleGAN2 layer: FIR -> demodulation -> noise -> bias -> leaky ReLU, clamp.

After its (transposed) convolution, an upsampling StyleGAN2 layer blurs with a 4x4 FIR filter, scales by
the demodulation coefficients (when they were not folded into the weight), adds noise and bias and applies
the clamped leaky ReLU: five passes over the largest tensors of the network in the plain path, one in the
Triton kernel (fir_bias_act_triton.py). Layers without upsampling run the same kernel with one unit tap.
The plain path (`fir_bias_act_reference`, what SynthesisLayer does unfused) is the reference, the CPU path
and what ONNX export traces; `use_fused` and `fused_or_plain` (filtered_lrelu.py) decide, with the same
one-line fallbacks.
"""

from __future__ import annotations

import torch

from .filtered_lrelu import output_size
from .layers import FirFilter, filter_table, lrelu_clamp

FUSED_SG2_OP = "fused StyleGAN2 layer"  # the op's name in warnings (use_fused, fused_or_plain)
# Output tile rows x columns and warps per program on a GPU: 4 outputs per thread. Compiled for sm_90 with a 4x4
# blur that takes 80 registers and no spill; 8 outputs per thread (4 warps) took 168, 16 spilled
# (tests/test_kernel_resources.py keeps the default spill-free; bench_gpu.py --layers --blocks times others).
BLOCK_CUDA = (16, 64)
NUM_WARPS = 8
BLOCK_INTERPRETER = (128, 128)  # largest tile on the CPU interpreter: fewer (slow) interpreted programs


def fir_bias_act_reference(
    x: torch.Tensor,  # [B, C, H, W]
    fir: FirFilter | None,  # the layer's up=1 FIR (its padding and gain), or None: no filter
    f: torch.Tensor | None,  # [K] or [K, K] taps of `fir`
    scale: torch.Tensor | None,  # [B, C] demodulation coefficients, or None (folded into the conv weight)
    noise: torch.Tensor | None,  # [B or 1, 1, OH, OW] noise, already times its strength; None: no noise
    bias: torch.Tensor,  # [C]
    gain: float,
    slope: float,
    clamp: float | None,
) -> torch.Tensor:  # [B, C, OH, OW], x's dtype
    """The plain path in x's dtype, op for op as StyleGAN2's SynthesisLayer runs unfused."""
    if fir is not None:
        x = fir(x, f)
    if scale is not None:
        x = x * scale.to(x.dtype).unsqueeze(2).unsqueeze(3)
    if noise is not None:
        x = x + noise.to(x.dtype)
    x = x + bias.to(x.dtype).reshape(1, -1, 1, 1)
    return lrelu_clamp(x, gain, slope, clamp)


def correlation_taps_2d(fir: FirFilter | None, f: torch.Tensor | None, device: torch.device) -> torch.Tensor:
    """[K, K] fp32 taps of `fir` as a correlation, gain included (a separable filter as its outer product)."""
    if fir is None:
        return torch.ones([1, 1], dtype=torch.float32, device=device)
    g = fir.correlation_taps(f)
    if g.ndim == 1:
        g = g.outer(g)
    return g.to(device=device, dtype=torch.float32).contiguous()


def fused_fir_bias_act(
    x: torch.Tensor,  # [B, C, H, W] fp16 / bf16 / fp32, CUDA (or CPU under TRITON_INTERPRET=1)
    fir: FirFilter | None,
    f: torch.Tensor | None,
    scale: torch.Tensor | None,  # [B, C]
    noise: torch.Tensor | None,  # [B or 1, 1, OH, OW] unscaled noise (see `strength`)
    strength: torch.Tensor | None,  # [] or [1] noise strength (a tensor: no host sync, CUDA graphs capture it)
    bias: torch.Tensor,  # [C]
    gain: float,
    slope: float,
    clamp: float | None,
    cache: dict | None = None,  # the caller's: taps per (filter, device)
    block: tuple[int, int] | None = None,  # output tile (rows, columns), powers of two; None: per device
    num_warps: int = NUM_WARPS,
) -> torch.Tensor:  # [B, C, OH, OW], x's dtype
    """Run the Triton kernel (see the module docstring for the semantics)."""
    from .fir_bias_act_triton import fir_bias_act_op

    b, c, h, w = x.shape
    assert bias.shape == (c,), (x.shape, bias.shape)
    taps = filter_table(cache, (f,), (x.device,), lambda: correlation_taps_2d(fir, f, x.device))
    k = taps.shape[0]
    px0, px1, py0, py1 = (0, 0, 0, 0) if fir is None else fir.padding
    out_h, out_w = output_size(h, k, 1, 1, 1, py0, py1), output_size(w, k, 1, 1, 1, px0, px1)
    if scale is not None:
        assert scale.shape == (b, c), (scale.shape, x.shape)
        scale = scale.to(torch.float32).contiguous()
    if noise is not None:
        assert noise.ndim == 4 and noise.shape[0] in (1, b) and noise.shape[1:] == (1, out_h, out_w), noise.shape
        assert strength is not None and strength.numel() == 1
        noise = noise.reshape(noise.shape[0], out_h, out_w).to(torch.float32).contiguous()
        strength = strength.reshape(1).to(torch.float32)
    if block is None and not x.is_cuda:  # the interpreter: no larger than the map (masked samples cost time there)
        block = tuple(min(b_, max(16, 1 << (n - 1).bit_length())) for b_, n in zip(BLOCK_INTERPRETER, (out_h, out_w)))
    block_h, block_w = block or BLOCK_CUDA
    return fir_bias_act_op(x, taps, scale, noise, strength if noise is not None else None, bias.to(torch.float32),
                           out_h, out_w, py0, px0, float(gain), float(slope), -1.0 if clamp is None else float(clamp),
                           block_h, block_w, num_warps)
