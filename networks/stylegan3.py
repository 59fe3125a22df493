"""StyleGAN3 synthesis network (Karras et al. 2021, "Alias-Free Generative Adversarial Networks").

Configs T (3x3 convs, separable Kaiser filters) and R (1x1 convs, radial jinc down-filters). Plain
PyTorch, dynamic batch, no custom ops: each layer is modulated conv -> bias -> upsample (transposed
depthwise conv) -> leaky ReLU + clamp -> low-pass + decimate (strided depthwise conv).
The input transform is a per-sample `forward` argument instead of the official mutable buffer.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..errors import InputError, UnsupportedNetworkError
from ..vocab import MAX_SIZE, TORCH_PRECISIONS, batch_transforms, check_precision
from .filtered_lrelu import (FUSED_CPU_OP, FUSED_OP, filtered_lrelu_reference, fused_filtered_lrelu, fused_or_plain,
                             use_fused, use_fused_cpu)
from .filtered_lrelu_cpu import filtered_lrelu_cpu
from .fir import filtered_activation_ort_cpu
from .layers import (
    LRELU_GAIN,
    LRELU_SLOPE,
    FirFilter,
    FullyConnected,
    assert_shape,
    demodulation_coefficients,
    fold_modulation,
    low_precision_dtype,
    lrelu_clamp,
    modulated_conv2d,
    weight_square_sums,
    weight_term,
)

# ------------------------------------------------------------------------------------------------
# Filter design (paper appendix C and D: Kaiser-windowed sinc, and its radially symmetric jinc twin).


def design_lowpass_filter(
    numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> torch.Tensor | None:
    """Kaiser low-pass with the given cutoff and transition width; None where no filter is needed."""
    if numtaps == 1:
        return None
    import scipy.signal
    import scipy.special

    if not radial:
        f = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        return torch.as_tensor(f, dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f *= np.outer(window, window)
    f /= np.sum(f)
    return torch.as_tensor(f, dtype=torch.float32)


# ------------------------------------------------------------------------------------------------
# Input transforms (official semantics: the buffer holds the inverse of the image-space transform).


def input_transform(
    rotate_deg: float | torch.Tensor = 0.0,  # [] or [B]: image rotation in degrees
    translate: tuple[float, float] | torch.Tensor = (0.0, 0.0),  # [2] or [B, 2]: in image widths
) -> torch.Tensor:  # [3, 3] or [B, 3, 3] float32
    """The `transforms` argument of `synthesis` that rotates and translates the image content.

    Equals inv(M) with M = [[c, s, tx], [-s, c, ty], [0, 0, 1]], the matrix the official
    gen_images.py builds and inverts, so the same numbers move the picture the same way.
    """
    try:
        angle = torch.as_tensor(rotate_deg, dtype=torch.float64) * (math.pi / 180)
        t = torch.as_tensor(translate, dtype=torch.float64)
        if angle.ndim > 1 or t.ndim > 2 or t.shape[-1:] != (2,):
            raise ValueError
        batched = angle.ndim > 0 or t.ndim > 1
        angle, t = torch.broadcast_tensors(angle.reshape(-1, 1), t.reshape(-1, 2))
    except (TypeError, ValueError, RuntimeError):
        raise InputError(f"input_transform takes an angle in degrees ([] or [B]) and a shift (x, y) in image widths "
                         f"([2] or [B, 2]), got {rotate_deg!r} and {translate!r}") from None
    angle = angle[:, 0]
    c, s = torch.cos(angle), torch.sin(angle)
    tx, ty = t[:, 0], t[:, 1]
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    m = torch.stack(
        [
            torch.stack([c, -s, -(c * tx - s * ty)], dim=1),
            torch.stack([s, c, -(s * tx + c * ty)], dim=1),
            torch.stack([zero, zero, one], dim=1),
        ],
        dim=1,
    ).to(torch.float32)
    return m if batched else m[0]


# ------------------------------------------------------------------------------------------------
# Fourier-feature input (section 3.1): sinusoids whose phase and frequency follow a per-sample
# rotation + translation predicted from w, composed with the user's transform.


def fourier_grid(width: int, height: int, sampling_rate: float) -> torch.Tensor:  # [1, height * width, 2] float32
    """(x, y) of the pixel centres of a width x height grid centred on the origin, in units where one
    sample is 1 / sampling_rate (the positions the official affine_grid samples, align_corners=False)."""

    def axis(n: int) -> torch.Tensor:
        return (torch.arange(n, dtype=torch.float64) + 0.5 - n / 2) / sampling_rate

    gy, gx = torch.meshgrid(axis(height), axis(width), indexing="ij")
    return torch.stack([gx, gy], dim=-1).reshape(1, height * width, 2).float()


class SynthesisInput(nn.Module):
    """Sampled Fourier features [B, C, H, W] on a grid built from arange (affine_grid does not export)."""

    def __init__(
        self,
        w_dim: int,  # w width
        channels: int,  # number of Fourier features
        size: int,  # output size incl. margins, pixels
        sampling_rate: float,  # samples per unit length
        bandwidth: float,  # max frequency of the features
    ):
        super().__init__()
        self.w_dim, self.channels, self.size = w_dim, channels, size
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnected(w_dim, 4, bias_init=[1.0, 0.0, 0.0, 0.0])
        self.register_buffer("transform", torch.eye(3))  # official name; unused: transforms are inputs
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand([channels]) - 0.5)
        self.register_buffer("grid", fourier_grid(size, size, self.sampling_rate), persistent=False)

    def forward(
        self,
        w: torch.Tensor,  # [B, w_dim]
        transforms: torch.Tensor,  # [B, 3, 3] user transforms (inverse image-space transform)
    ) -> torch.Tensor:  # [B, C, size, size]
        return self.sample(w, transforms, self.grid, self.size, self.size)

    def sample(
        self,
        w: torch.Tensor,  # [B, w_dim]
        transforms: torch.Tensor,  # [B, 3, 3]
        grid: torch.Tensor,  # [1, height * width, 2] sample positions (fourier_grid)
        height: int,  # rows of the grid
        width: int,  # columns of the grid
    ) -> torch.Tensor:  # [B, C, height, width]
        """The features at any grid of positions: a wider grid is more of the same plane."""
        t = self.affine(w)  # (r_c, r_s, t_x, t_y) per sample
        t = t / t[:, :2].square().sum(dim=1, keepdim=True).sqrt()
        c, s, tx, ty = t.unbind(dim=1)
        zero, one = torch.zeros_like(c), torch.ones_like(c)
        m_r = torch.stack([c, -s, zero, s, c, zero, zero, zero, one], dim=1).reshape(-1, 3, 3)
        m_t = torch.stack([one, zero, -tx, zero, one, -ty, zero, zero, one], dim=1).reshape(-1, 3, 3)
        m = m_r @ m_t @ transforms  # [B, 3, 3]

        freqs = self.freqs.unsqueeze(0)  # [1, C, 2]
        phases = self.phases.unsqueeze(0) + (freqs @ m[:, :2, 2:]).squeeze(2)  # [B, C]
        freqs = freqs @ m[:, :2, :2]  # [B, C, 2]
        # Fade out features that would alias after the transform (eq. in section 3.1).
        norms = freqs.square().sum(dim=2).sqrt()
        amplitudes = (1 - (norms - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        x = grid @ freqs.transpose(1, 2)  # [B, H*W, C]
        x = torch.sin((x + phases.unsqueeze(1)) * (2 * math.pi)) * amplitudes.unsqueeze(1)
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.reshape(-1, height, width, self.channels).permute(0, 3, 1, 2)


# ------------------------------------------------------------------------------------------------
# Synthesis layer (section 3.2 and appendix F): modulated conv and filtered leaky ReLU.


class SynthesisLayer(nn.Module):
    """One alias-free layer: [B, I, in_size, in_size] -> [B, O, out_size, out_size]."""

    def __init__(
        self,
        w_dim: int,  # w width
        is_torgb: bool,  # last layer: 1x1 conv, no demodulation, no nonlinearity
        is_critically_sampled: bool,  # last layers: cutoff at Nyquist, Kaiser (not radial) filter
        use_fp16: bool,  # eligible for fp16 when the network runs in fp16
        in_channels: int,  # input channels
        out_channels: int,  # output channels
        in_size: int,  # input size incl. margins
        out_size: int,  # output size incl. margins
        in_sampling_rate: int,  # input sampling rate
        out_sampling_rate: int,  # output sampling rate
        in_cutoff: float,  # input cutoff frequency
        out_cutoff: float,  # output cutoff frequency
        in_half_width: float,  # input transition band half-width
        out_half_width: float,  # output transition band half-width
        conv_kernel: int = 3,  # 3 (config T) or 1 (config R)
        filter_size: int = 6,  # filter taps per unit of up/down factor
        lrelu_upsampling: int = 2,  # extra oversampling around the nonlinearity
        use_radial_filters: bool = False,  # radial jinc down-filter (config R)
        conv_clamp: float | None = 256,  # clamp of the pre-downsampling activations
        magnitude_ema_beta: float = 0.999,  # training-time EMA decay of the input magnitude
    ):
        super().__init__()
        self.is_torgb, self.use_fp16 = is_torgb, use_fp16
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size, self.out_size = int(in_size), int(out_size)
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)

        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        up = int(np.rint(tmp_sampling_rate / in_sampling_rate))
        down = int(np.rint(tmp_sampling_rate / out_sampling_rate))
        up_taps = filter_size * up if up > 1 and not is_torgb else 1
        down_taps = filter_size * down if down > 1 and not is_torgb else 1
        down_radial = use_radial_filters and not is_critically_sampled
        up_filter = design_lowpass_filter(up_taps, in_cutoff, in_half_width * 2, tmp_sampling_rate)
        down_filter = design_lowpass_filter(down_taps, out_cutoff, out_half_width * 2, tmp_sampling_rate, down_radial)
        self.register_buffer("up_filter", up_filter)
        self.register_buffer("down_filter", down_filter)

        # Padding so that output samples sit where the symmetric interpretation puts them (app. C.3).
        pad_total = (self.out_size - 1) * down + 1
        pad_total -= (self.in_size + self.conv_kernel - 1) * up
        pad_total += up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2
        pad_hi = pad_total - pad_lo
        padding = (pad_lo, pad_hi, pad_lo, pad_hi)
        # The activation gain sqrt(2) is folded into the upsampling filter: lrelu(g x) = g lrelu(x).
        self.act_gain = 1.0 if is_torgb else LRELU_GAIN
        self.upsample = (
            FirFilter(up_taps, True, out_channels, up=up, padding=padding, gain=up**2 * self.act_gain)
            if up_filter is not None else None
        )
        self.downsample = (
            FirFilter(down_taps, not down_radial, out_channels, down=down) if down_filter is not None else None
        )
        self.up, self.down, self.padding = up, down, padding
        self.fused_cache: dict = {}  # filter banks of the fused op (filtered_lrelu.py), built on first use

    def _normalised_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The weight over its RMS, and its squares summed over the kernel taps [O, I] (for eq. 3)."""
        weight = self.weight * self.weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        return weight, weight_square_sums(weight)

    def forward(
        self,
        x: torch.Tensor,  # [B, I, in_size, in_size]
        w: torch.Tensor,  # [B, w_dim]
        dtype: torch.dtype = torch.float32,  # compute dtype of this layer
    ) -> torch.Tensor:  # [B, O, out_size, out_size]
        styles = self.affine(w)  # [B, I]
        weight = self.weight
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel**2))
            dcoefs = None
        else:
            # Pre-normalise (as the official kernel does against fp16 overflow), then eq. 3.
            weight, wsq = weight_term(self, "normalised", self._normalised_weight, self.weight)
            styles = styles * styles.square().mean(dim=1, keepdim=True).rsqrt()
            dcoefs = demodulation_coefficients(wsq, styles)
        styles = styles * self.magnitude_ema.rsqrt()  # input gain: undo the input's running magnitude
        x = x.to(dtype)
        # Decided before the conv: the fused op adds the bias itself, else the conv does (no extra pass).
        filtered = self.upsample is not None and self.downsample is not None  # not ToRGB: up, activation, down
        # On a CPU the numba kernels (filtered_lrelu_cpu.py), on CUDA the Triton kernel (filtered_lrelu.py).
        on_cpu = filtered and use_fused_cpu(self.upsample.impl, x, self.up_filter)
        fused = on_cpu or (filtered and use_fused(self.upsample.impl, x, FUSED_OP))
        # Fused at batch > 1, the demodulation is the kernel's too (one pass fewer over the conv output).
        scale = dcoefs if fused and not fold_modulation(x) else None
        x = modulated_conv2d(x, weight, styles, None if scale is not None else dcoefs, padding=self.conv_kernel - 1,
                             bias=None if fused else self.bias)
        if fused:
            args = (x, self.bias, self.up_filter, self.down_filter, self.up, self.down, self.padding,
                    self.upsample.gain, 1.0, LRELU_SLOPE, self.conv_clamp)
            kernel = filtered_lrelu_cpu if on_cpu else fused_filtered_lrelu
            return fused_or_plain(FUSED_CPU_OP if on_cpu else FUSED_OP,
                                  lambda: kernel(*args, self.fused_cache, scale=scale),
                                  lambda: filtered_lrelu_reference(*args, scale=scale))
        channels = self.out_channels
        first = self.upsample if self.upsample is not None else self.downsample
        padded = first.conv_channels if first is not None else channels  # forms set both filters alike
        if padded > channels:  # export forms: the depthwise filters run on zero channels up to a vector width
            x = torch.nn.functional.pad(x, [0, 0, 0, 0, 0, padded - channels])
        gain = self.act_gain
        if filtered and self.upsample.impl == "merged":
            # the export form for ONNX Runtime CPU (networks/forms.py); the activation gain is in the up-filter
            x = filtered_activation_ort_cpu(x, self.upsample.correlation_taps(self.up_filter), self.up, self.padding,
                                            self.downsample.correlation_taps(self.down_filter), self.down,
                                            LRELU_SLOPE, self.conv_clamp, padded)
            return x[:, :channels] if padded > channels else x
        if self.upsample is not None:
            x = self.upsample(x, self.up_filter)
            gain = 1.0  # already applied by the filter
        x = lrelu_clamp(x, gain, 1.0 if self.is_torgb else LRELU_SLOPE, self.conv_clamp)
        if self.downsample is not None:
            x = self.downsample(x, self.down_filter)
        return x[:, :channels] if padded > channels else x


# ------------------------------------------------------------------------------------------------
# Synthesis network (section 3 and appendix F: the frequency schedule of every layer).


class SynthesisNetwork(nn.Module):
    """ws [B, num_ws, w_dim] (+ transforms) -> images [B, C, R, R] float32 in about [-1, 1]."""

    def __init__(
        self,
        w_dim: int,  # w width
        img_resolution: int,  # output resolution
        img_channels: int,  # output channels
        channel_base: int = 32768,  # overall multiplier for the number of channels
        channel_max: int = 512,  # max channels in any layer
        num_layers: int = 14,  # layers excluding the Fourier input and toRGB
        num_critical: int = 2,  # critically sampled layers at the end
        first_cutoff: float = 2,  # cutoff of the first layer, f_{c,0}
        first_stopband: float = 2**2.1,  # stopband of the first layer, f_{t,0}
        last_stopband_rel: float = 2**0.3,  # last layer's stopband relative to its cutoff
        margin_size: int = 10,  # pixels of margin around the image in the inner layers
        output_scale: float = 0.25,  # scale of the toRGB output
        num_fp16_res: int = 4,  # fp16 in layers whose sampling rate x 2^n exceeds the resolution
        **layer_kwargs,  # conv_kernel, use_radial_filters, conv_clamp, filter_size, ...
    ):
        super().__init__()
        if not 0 <= num_critical < num_layers:  # the schedule divides by the non-critical layer count
            raise UnsupportedNetworkError(f"StyleGAN3 num_critical must be from 0 to num_layers - 1 ({num_layers - 1}), "
                                          f"got {num_critical}")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_ws = num_layers + 2
        self.num_layers, self.output_scale = num_layers, output_scale

        last_cutoff = img_resolution / 2
        last_stopband = last_cutoff * last_stopband_rel
        exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
        cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
        stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
        sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
        half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
        sizes = sampling_rates + margin_size * 2
        sizes[-2:] = img_resolution
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        if not channels.min() >= 1:  # channels fall as channel_base / cutoff (also refuses NaN)
            raise UnsupportedNetworkError(f"StyleGAN3 channel_base {channel_base} with channel_max {channel_max} leaves "
                                          f"no channels in the {img_resolution} px layers")
        channels[-1] = img_channels

        self.sampling_rates = [float(r) for r in sampling_rates]  # per layer; canvases scale extents by them
        self.input = SynthesisInput(w_dim, int(channels[0]), int(sizes[0]), sampling_rates[0], cutoffs[0])
        self.layer_names = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim,
                is_torgb=(idx == num_layers),
                is_critically_sampled=(idx >= num_layers - num_critical),
                use_fp16=bool(sampling_rates[idx] * (2**num_fp16_res) > img_resolution),
                in_channels=int(channels[prev]),
                out_channels=int(channels[idx]),
                in_size=int(sizes[prev]),
                out_size=int(sizes[idx]),
                in_sampling_rate=int(sampling_rates[prev]),
                out_sampling_rate=int(sampling_rates[idx]),
                in_cutoff=cutoffs[prev],
                out_cutoff=cutoffs[idx],
                in_half_width=half_widths[prev],
                out_half_width=half_widths[idx],
                **layer_kwargs,
            )
            name = f"L{idx}_{layer.out_size}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(
        self,
        ws: torch.Tensor,  # [B, num_ws, w_dim]
        transforms: torch.Tensor | None = None,  # None, [3, 3] or [B, 3, 3]
        noise_mode: str = "const",  # accepted for a uniform interface; StyleGAN3 has no noise inputs
        precision: str = "fp32",  # fp16 / bf16: the layers marked use_fp16 compute in that dtype (official policy)
    ) -> torch.Tensor:  # [B, img_channels, R, R] float32
        return self.run(ws, transforms, precision, self.input.grid, self.input.size, self.input.size)

    def run(
        self,
        ws: torch.Tensor,  # [B, num_ws, w_dim]
        transforms: torch.Tensor | None,  # None, [3, 3] or [B, 3, 3]
        precision: str,  # fp32 / fp16 / bf16 (as forward)
        grid: torch.Tensor,  # [1, height * width, 2] positions of the input features (fourier_grid)
        height: int,  # input rows, margins included
        width: int,  # input columns, margins included
    ) -> torch.Tensor:  # [B, img_channels, H', W'] float32: R x R for the network's own grid
        """Synthesis from any input grid: every layer keeps its padding, so extents follow the input's."""
        assert_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        low = low_precision_dtype(check_precision(precision, TORCH_PRECISIONS))
        ws = ws.to(torch.float32)
        w_list = ws.unbind(dim=1)
        x = self.input.sample(w_list[0], batch_transforms(transforms, ws.shape[0], device=ws.device), grid, height, width)
        for name, w in zip(self.layer_names, w_list[1:]):
            layer = getattr(self, name)
            dtype = low if (low is not None and layer.use_fp16) else torch.float32
            x = layer(x, w, dtype)
        x = x.to(torch.float32)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x


# ------------------------------------------------------------------------------------------------
# Any canvas size: StyleGAN3 is translation-equivariant, so a wider canvas is more of the same plane.


def extra_samples(size: int, img_resolution: int, rate_ratio: int) -> int:
    """Samples added to each side of the input grid so that the output covers `size` pixels.

    One input sample becomes rate_ratio output pixels (rates grow by powers of two), so the extension
    is rounded up at the input's rate; negative for a canvas smaller than the network's image.
    """
    return -((img_resolution - size) // (2 * rate_ratio))  # ceil((size - R) / (2 * ratio))


def check_canvas(width: int, height: int, img_resolution: int) -> tuple[int, int]:
    """(width, height) as ints, or a one-line InputError: positive, at most vocab.MAX_SIZE, and differing
    from the network's size by an even number of pixels (the centred crop then starts on a pixel)."""
    try:
        size = (int(width), int(height))
    except (TypeError, ValueError):
        raise InputError(f"canvas size must be two integers, got {width!r} x {height!r}") from None
    for name, n in zip(("width", "height"), size):
        if not 0 < n <= MAX_SIZE:
            raise InputError(f"canvas {name} must be between 1 and {MAX_SIZE} pixels, got {n}")
        if (n - img_resolution) % 2:
            raise InputError(f"canvas {name} {n} must be {'even' if img_resolution % 2 == 0 else 'odd'} like the "
                             f"network's {img_resolution} px (its image sits centred on the canvas): use {n - 1} or {n + 1}")
    return size


class SynthesisCanvas(nn.Module):
    """A SynthesisNetwork rendered on a width x height canvas, sharing its weights (no copy).

    The input's sampling grid grows by `extra` samples per side at the first layer's rate; every later
    layer then grows by the same physical length at its own rate (extra x rate / first rate, an integer:
    rates are powers of two), because each layer keeps its padding and filters. The network's output
    is centred on the canvas and cropped to exactly width x height. Its centre R x R pixels are the
    square render except near the square's border, where the square render saw zero padding.
    """

    def __init__(self, synthesis: SynthesisNetwork, width: int, height: int):
        super().__init__()
        self.synthesis = synthesis  # a submodule: weights are shared and move with this module
        self.w_dim, self.num_ws = synthesis.w_dim, synthesis.num_ws
        self.img_resolution, self.img_channels = synthesis.img_resolution, synthesis.img_channels
        r = self.img_resolution
        self.width, self.height = check_canvas(width, height, r)
        # Output pixels per input sample (the last layers sample at the image's rate, R per unit length).
        ratio = int(round(synthesis.sampling_rates[-1] / synthesis.sampling_rates[0]))
        self.extra = (extra_samples(self.width, r, ratio), extra_samples(self.height, r, ratio))  # (x, y) per side
        n = synthesis.input.size
        self.grid_size = (n + 2 * self.extra[0], n + 2 * self.extra[1])  # (width, height) of the input grid
        self.register_buffer("grid", fourier_grid(*self.grid_size, synthesis.input.sampling_rate), persistent=False)
        out_w, out_h = r + 2 * self.extra[0] * ratio, r + 2 * self.extra[1] * ratio  # the network's output
        self.crop = ((out_w - self.width) // 2, (out_h - self.height) // 2)  # (x, y) offset of the canvas in it

    def forward(
        self,
        ws: torch.Tensor,  # [B, num_ws, w_dim]
        transforms: torch.Tensor | None = None,  # None, [3, 3] or [B, 3, 3]: about the canvas centre
        noise_mode: str = "const",  # accepted for a uniform interface
        precision: str = "fp32",  # as SynthesisNetwork.forward
    ) -> torch.Tensor:  # [B, img_channels, height, width] float32
        x = self.synthesis.run(ws, transforms, precision, self.grid, self.grid_size[1], self.grid_size[0])
        cx, cy = self.crop
        return x[:, :, cy : cy + self.height, cx : cx + self.width]
