"""Layers shared by the StyleGAN2 and StyleGAN3 generators, in plain, export-friendly PyTorch.

Rules kept everywhere in this folder (see ARCHITECTURE.md):
- no Python int is read from a tensor shape inside `forward` (that would freeze the batch in a graph);
- no grouped convolution with per-sample weights: modulation scales activations instead;
- FIR up/down-sampling is a depthwise (transposed) convolution with a fixed filter in exports and on
  CPUs; eager CUDA upsamples with the equivalent tiled matrix products of fir.py (faster there);
- only ops that ONNX and TensorRT run: conv, conv-transpose, pad, slice, elementwise, matmul, sin, clip.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..vocab import FIR_IMPLS, check_choice, tracing
from .fir import fir_matmul, fir_matrices, pad_or_crop, upsample_matmul_polyphase

LRELU_SLOPE = 0.2  # leaky ReLU negative slope used by every StyleGAN layer
LRELU_GAIN = math.sqrt(2.0)  # keeps the activation variance of lrelu layers at one
EPS = 1e-8  # added before rsqrt in 2nd-moment normalisation and demodulation


LOW_PRECISION_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}  # what the use_fp16 layers compute in


def low_precision_dtype(precision: str) -> torch.dtype | None:
    """The dtype of the fp16-eligible layers at `precision` (vocab.TORCH_PRECISIONS); None for fp32."""
    return LOW_PRECISION_DTYPES.get(precision)


def assert_shape(t: torch.Tensor, shape: list[int | None], name: str) -> None:
    """Check a tensor's rank and the given sizes (None = any) at a module edge; raise InputError.

    Skipped while tracing for export: the graph must not record shape arithmetic.
    """
    if tracing():
        return
    if t.ndim != len(shape) or any(s is not None and int(d) != s for d, s in zip(t.shape, shape)):
        want = "[" + ", ".join("?" if s is None else str(s) for s in shape) + "]"
        raise InputError(f"{name} must have shape {want}, got {list(t.shape)}")


def normalize_2nd_moment(x: torch.Tensor) -> torch.Tensor:
    """Scale each row to unit root-mean-square (StyleGAN's pixel norm of z and of the label embedding)."""
    return x * (x.square().mean(dim=1, keepdim=True) + EPS).rsqrt()


def lrelu_clamp(x: torch.Tensor, gain: float, slope: float, clamp: float | None) -> torch.Tensor:
    """Leaky ReLU times `gain`, then a symmetric clamp (StyleGAN's bias_act without the bias).

    In place: `x` is always a fresh intermediate here, and these tensors are the largest in the
    network, so saving two allocations per layer matters on a CPU.
    """
    if slope != 1.0:
        x = F.leaky_relu(x, slope, inplace=True)
    if gain != 1.0:
        x = x.mul_(gain)
    if clamp is not None:
        x = x.clamp_(-clamp, clamp)
    return x


# ------------------------------------------------------------------------------------------------
# Terms computed from the weights alone, kept between calls.


def weight_term(owner: nn.Module, name: str, fn, *tensors: torch.Tensor, extra: object = None):
    """fn(): a value computed from `tensors` (weights) alone, e.g. a normalised weight; kept on `owner` while they
    are unchanged (same storage, in-place version, dtype, device; `extra`: anything else fn depends on).

    Why: a frame at batch 1 recomputed these in 8 small ops per layer (about 2 % of the embedded network's CPU
    time, and as many kernel launches on a GPU). Computed afresh while tracing or compiling (the graph computes
    them; torch.compile would break its graph at the storage check), while a CUDA graph is captured (its replays
    then follow weights changed in place) and when gradients flow to the tensors.
    """
    if tracing() or _compiling() or (torch.is_grad_enabled() and any(t.requires_grad for t in tensors)) or \
            (tensors[0].is_cuda and torch.cuda.is_current_stream_capturing()):  # a CUDA graph reads the weights
        return fn()
    key = (extra, tuple((t.data_ptr(), _version(t), t.dtype, t.device) for t in tensors))
    cache = owner.__dict__.setdefault("_weight_terms", {})  # not a buffer: never saved, never moved by .to()
    hit = cache.get(name)
    if hit is not None and hit[0] == key:
        return hit[1]
    value = fn()
    cache[name] = (key, value)
    return value


def _compiling() -> bool:
    """Inside torch.compile's tracing (dynamo)."""
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and hasattr(compiler, "is_compiling"):
        return compiler.is_compiling()
    return bool(getattr(getattr(torch, "_dynamo", None), "is_compiling", lambda: False)())


def filter_table(cache: dict | None, filters: tuple[torch.Tensor | None, ...], rest: tuple, make):
    """make(): a table built from fixed filter taps (index tables, filter banks, tile matrices), kept in `cache` (one
    entry) per (the filters' storage and in-place version, `rest`: what else it depends on, e.g. dtype, device).

    While torch.compile traces, the kept entry with the same `rest` is used as it is: its tracer cannot compare
    storages (the check broke the graph at every layer and hit the recompile limit), and a network's filters are
    fixed by its configuration, so the eager call that made the entry saw the same taps. With none kept, the table
    is made in the trace (correct, with graph breaks): compile after one eager call.
    """
    if _compiling():
        for (_, kept_rest), value in (cache or {}).items():
            if kept_rest == rest:
                return value
        return make()
    key = (tuple((None, 0) if f is None else (f.data_ptr(), _version(f)) for f in filters), rest)
    value = None if cache is None else cache.get(key)
    if value is None:
        value = make()
        if cache is not None:
            cache.clear()  # one entry: a layer sees one input size, dtype and place at a time
            cache[key] = value
    return value


# ------------------------------------------------------------------------------------------------
# Fully connected layer with equalised learning rate (Karras et al. 2018, section 4.1).


class FullyConnected(nn.Module):
    """y = act(x @ (weight * lr / sqrt(in)).T + bias * lr): weights are stored unscaled, as trained."""

    def __init__(
        self,
        in_features: int,  # input width
        out_features: int,  # output width
        activation: str = "linear",  # "linear" or "lrelu"
        lr_multiplier: float = 1.0,  # equalised-lr multiplier (0.01 in mapping networks)
        bias_init: float | list[float] = 0.0,  # initial bias (1 for style affines)
    ):
        super().__init__()
        assert activation in ("linear", "lrelu")
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        bias = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features])
        self.bias = nn.Parameter(torch.from_numpy(bias / lr_multiplier))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, in] -> [B, out]
        w, b = weight_term(self, "scaled", lambda: (self.weight.to(x.dtype) * self.weight_gain,
                                                    self.bias.to(x.dtype) * self.bias_gain),
                           self.weight, self.bias, extra=x.dtype)
        x = torch.addmm(b.unsqueeze(0), x, w.t())
        if self.activation == "lrelu":
            x = lrelu_clamp(x, LRELU_GAIN, LRELU_SLOPE, None)
        return x


# ------------------------------------------------------------------------------------------------
# Modulated convolution (StyleGAN2 paper, eqs. 1-3), batch-agnostic form.


def weight_square_sums(weight: torch.Tensor) -> torch.Tensor:
    """sum_k w^2 for every output and input channel: [O, I, k, k] -> [O, I], the weight's part of eq. 3 (a
    weight-only term: callers keep it with weight_term)."""
    return weight.square().sum(dim=[2, 3])


def demodulation_coefficients(wsq: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """Eq. 3: 1 / sqrt(sum_{i,k} (s_i w_{o,i,k})^2 + eps) for every sample and output channel.

    wsq: weight_square_sums(weight) [O, I], styles: [B, I] -> [B, O]. Computed as (s^2) @ wsq.T, which equals
    the per-sample weight norm of the official fused kernel without building per-sample weights.
    """
    return (styles.square() @ wsq.t() + EPS).rsqrt()


def fold_modulation(x: torch.Tensor) -> bool:
    """Batch 1 in eager mode: scale the weight, not the activations (the official fused modconv's form).

    One conv and no two extra passes over the feature maps: 5 % of the embedded network's CPU time. Traced
    and exported graphs keep the batch-generic form (per-sample weights would fix the batch at 1).
    """
    return not tracing() and x.shape[0] == 1


def modulated_conv2d(
    x: torch.Tensor,  # [B, I, H, W]
    weight: torch.Tensor,  # [O, I, k, k], shared by the batch
    styles: torch.Tensor,  # [B, I]
    dcoefs: torch.Tensor | None,  # [B, O] demodulation, or None (toRGB layers)
    padding: int,
    bias: torch.Tensor | None = None,  # [O] added after demodulation, or None
) -> torch.Tensor:  # [B, O, H', W']
    """Scale input channels by the styles, convolve with the shared weight, scale output channels."""
    bias = None if bias is None else bias.to(x.dtype)
    if fold_modulation(x):
        weight = weight * styles.reshape(1, -1, 1, 1)
        if dcoefs is not None:
            weight = weight * dcoefs.reshape(-1, 1, 1, 1)
        return F.conv2d(x, weight.to(x.dtype), bias=bias, padding=padding)
    x = x * styles.to(x.dtype).unsqueeze(2).unsqueeze(3)
    x = F.conv2d(x, weight.to(x.dtype), padding=padding)
    if dcoefs is not None:
        x = x * dcoefs.to(x.dtype).unsqueeze(2).unsqueeze(3)
    return x if bias is None else x + bias.reshape(1, -1, 1, 1)


# ------------------------------------------------------------------------------------------------
# FIR resampling as depthwise convolutions (the upfirdn2d of the StyleGAN papers without custom ops).


def _version(t: torch.Tensor | None) -> int:
    """In-place modification counter (-1 for inference tensors, which cannot be modified outside inference; 0 for
    None): with data_ptr, what tells a cached filter bank that its taps changed."""
    if t is None:
        return 0
    try:
        return t._version
    except RuntimeError:
        return -1


def set_fir_impl(module: nn.Module, impl: str) -> nn.Module:
    """Choose how every FirFilter in `module` filters: "auto", "conv", "matmul" or "fused" (see FirFilter).

    "fused": StyleGAN3 layers run bias, up-filter, activation and down-filter as one Triton kernel
    (filtered_lrelu.py), StyleGAN2 layers their blur, demodulation, noise, bias and activation (fir_bias_act.py);
    "auto" does so on CUDA when Triton imports. Where it cannot run, auto's rule does.
    """
    check_choice(impl, FIR_IMPLS, "FIR implementation")
    for m in module.modules():
        if isinstance(m, FirFilter):
            m.impl = impl
        elif isinstance(getattr(m, "fir_impl", None), str):  # a layer with a fused op of its own (StyleGAN2)
            m.fir_impl = impl
    return module


class FirFilter(nn.Module):
    """Depthwise FIR filter on [B, C, H, W] with optional zero-insertion upsampling and decimation.

    Semantics of upfirdn2d: insert up-1 zeros after every sample, pad (px0, px1, py0, py1), convolve
    with f (a true convolution), keep every down-th sample. A 1-D filter runs as two separable passes.
    Upsampling is a strided transposed convolution, so the zeros are never materialised. The taps are
    passed to `forward` (they live in the owning layer under their official name); in an exported
    graph the kernel built from them is a folded constant.
    """

    def __init__(
        self,
        taps: int,  # filter length K
        separable: bool,  # True: f is [K] applied along x then y; False: f is [K, K]
        channels: int,  # depthwise: the same filter on every channel
        up: int = 1,  # zero-insertion factor
        down: int = 1,  # decimation factor
        padding: tuple[int, int, int, int] = (0, 0, 0, 0),  # px0, px1, py0, py1
        gain: float = 1.0,  # overall gain (up**2 keeps the DC level after zero insertion)
    ):
        super().__init__()
        assert up >= 1 and down >= 1
        if up > 1 and down > 1:
            raise ValueError("FirFilter does either up or down sampling, not both")
        self.taps, self.separable, self.channels = taps, separable, channels
        self.up, self.down, self.gain = up, down, gain
        self.padding = tuple(int(p) for p in padding)
        # "conv" | "matmul" | "fused" | "auto": matmul for upsampling on CUDA in eager mode, else conv;
        # "polyphase": upsampling as banded MatMul + polyphase rows (an ONNX Runtime CPU export form, fir.py);
        # "merged": the same, and a StyleGAN3 layer merges the rows into its down-filter (upsample_act_downsample)
        self.impl = "auto"
        self.channel_multiple = 1  # depthwise convs run on channels zero-padded to this multiple (export forms)
        self._matrices: dict = {}  # the matmul form's FirMatrices (filter_table)

    @property
    def conv_channels(self) -> int:
        """Channels of the depthwise convs: `channels` rounded up to `channel_multiple`."""
        return -(-self.channels // self.channel_multiple) * self.channel_multiple

    def kernels(self, f: torch.Tensor, dtype: torch.dtype) -> list[torch.Tensor]:
        """Depthwise conv weights: [C,1,1,K] and [C,1,K,1] (separable) or [C,1,K,K], C = conv_channels."""
        f = f.to(torch.float32) * self.gain ** (f.ndim / 2)
        if self.up == 1:
            f = f.flip(list(range(f.ndim)))  # conv2d correlates; flip for a true convolution
        f = f.to(dtype)
        c = self.conv_channels
        if self.separable:
            return [f.reshape(1, 1, 1, -1).expand(c, 1, 1, self.taps), f.reshape(1, 1, -1, 1).expand(c, 1, self.taps, 1)]
        return [f.reshape(1, 1, self.taps, self.taps).expand(c, 1, self.taps, self.taps)]

    def use_matmul(self, x: torch.Tensor) -> bool:
        """auto: on an H100 (SG3-R 1024, fp16) the matmul form upsampled 10x faster than cuDNN's depthwise
        transposed conv (3.6 vs 37.9 ms) but downsampled slower (29 vs 12 ms radial, 4.1 vs 3.3 separable)."""
        if self.impl not in ("auto", "fused"):  # fused: this filter runs only where the fused op cannot
            return self.impl == "matmul"
        return self.up > 1 and x.is_cuda and not tracing()

    def matrices(self, f: torch.Tensor, x: torch.Tensor):
        """The tile matrices of the matmul form, kept per (filter, dtype, device) (filter_table)."""
        def make():
            with torch.inference_mode(False), torch.no_grad():
                return fir_matrices(self.correlation_taps(f), self.taps, self.up, self.down, self.padding, x.dtype,
                                    x.device)
        return filter_table(self._matrices, (f,), (x.dtype, x.device), make)

    def correlation_taps(self, f: torch.Tensor) -> torch.Tensor:
        """f with the gain, flipped (a true convolution as a correlation): [K] or [K, K] float64 taps."""
        g = f.detach().to(torch.float64) * self.gain ** (f.ndim / 2)
        return g.flip(list(range(g.ndim)))

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] -> [B, C, H', W']
        if self.use_matmul(x):
            return fir_matmul(x, self.matrices(f, x), self.taps, self.up, self.down, self.padding)
        if self.impl in ("polyphase", "merged") and self.up > 1:
            return upsample_matmul_polyphase(x, self.correlation_taps(f), self.up, self.padding, self.conv_channels)
        px0, px1, py0, py1 = self.padding
        k, u, s, c = self.taps, self.up, self.down, self.conv_channels
        ks = self.kernels(f, x.dtype)
        if u > 1:
            # conv_transpose(x, f, stride=u)[n] is the zero-inserted, padded, filtered signal at
            # n + (K - 1 - p0); it has (L - 1) * u + K samples where L * u + p0 + p1 - K + 1 are wanted.
            # The symmetric part of the crop is conv_transpose's own padding (no strided copy).
            x0, x1, y0, y1 = px0 - (k - 1), px1 - (k - u), py0 - (k - 1), py1 - (k - u)
            cx, cy = max(min(-x0, -x1), 0), max(min(-y0, -y1), 0)
            if self.separable:
                x = F.conv_transpose2d(x, ks[0], stride=(1, u), padding=(0, cx), groups=c)
                x = pad_or_crop(x, 3, x0 + cx, x1 + cx)
                x = F.conv_transpose2d(x, ks[1], stride=(u, 1), padding=(cy, 0), groups=c)
                return pad_or_crop(x, 2, y0 + cy, y1 + cy)
            x = F.conv_transpose2d(x, ks[0], stride=u, padding=(cy, cx), groups=c)
            return pad_or_crop(pad_or_crop(x, 3, x0 + cx, x1 + cx), 2, y0 + cy, y1 + cy)
        x = pad_or_crop(pad_or_crop(x, 3, px0, px1), 2, py0, py1)
        if self.separable:
            x = F.conv2d(x, ks[0], stride=(1, s), groups=c)
            return F.conv2d(x, ks[1], stride=(s, 1), groups=c)
        return F.conv2d(x, ks[0], stride=s, groups=c)
