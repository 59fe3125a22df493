"""StyleGAN2 synthesis network (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN").

The skip ('skip', the official default) and 'orig' generator architectures, as in stylegan2-ada-pytorch
and the StyleGAN3 repository's networks_stylegan2. Modulated convs scale activations (no grouped conv),
upsampling is a transposed conv followed by a depthwise FIR filter, so the batch stays dynamic.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, UnsupportedNetworkError
from ..vocab import NO_TRANSFORM, TORCH_PRECISIONS, check_precision
from .filtered_lrelu import fused_or_plain, use_fused
from .fir_bias_act import FUSED_SG2_OP, fir_bias_act_reference, fused_fir_bias_act
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

NOISE_MODES = ("const", "random", "none")  # fixed per-layer noise, fresh noise, no noise


def setup_filter(taps: list[float]) -> torch.Tensor:
    """Outer product of 1-D taps normalised to unit sum: the [K, K] `resample_filter` buffer."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = f.outer(f)
    return f / f.sum()


# ------------------------------------------------------------------------------------------------
# Layers (paper section 2.2: weight demodulation; noise inputs from StyleGAN, section 3.2).


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x upsampling) + noise + bias + leaky ReLU + clamp."""

    def __init__(
        self,
        in_channels: int,  # input channels
        out_channels: int,  # output channels
        w_dim: int,  # w width
        resolution: int,  # output resolution (noise size)
        kernel_size: int = 3,  # conv kernel size
        up: int = 1,  # 1 or 2
        use_noise: bool = True,  # per-pixel noise input
        resample_filter: list[float] = (1, 3, 3, 1),  # low-pass taps for upsampling
        conv_clamp: float | None = None,  # clamp of the activations
        **unused,  # channels_last, activation ('lrelu') - accepted for official kwargs
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.resolution = in_channels, out_channels, resolution
        self.up, self.use_noise, self.conv_clamp = up, use_noise, conv_clamp
        self.padding = kernel_size // 2
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        if up > 1:
            # Transposed conv gives 2H + k - 2 samples; the FIR pass trims them back to 2H.
            fk = self.resample_filter.shape[0]
            p0 = self.padding + (fk + up - 1) // 2 - (kernel_size - 1)
            p1 = self.padding + (fk - up) // 2 - (kernel_size - up)
            self.fir = FirFilter(fk, False, out_channels, up=1, padding=(p0, p1, p0, p1), gain=up**2)
        self.fir_impl = "auto"  # set_fir_impl: "auto" / "fused" run FIR, noise, bias, activation as one kernel on CUDA
        self.fused_cache: dict = {}  # the fused op's taps (fir_bias_act.py), built on first use

    def forward(
        self,
        x: torch.Tensor,  # [B, I, H, W]
        w: torch.Tensor,  # [B, w_dim]
        noise_mode: str = "const",  # see NOISE_MODES
    ) -> torch.Tensor:  # [B, O, resolution, resolution]
        styles = self.affine(w)
        if x.dtype == torch.float16:
            styles = styles / styles.abs().amax(dim=1, keepdim=True)  # avoid fp16 overflow, as officially
        wsq = weight_term(self, "wsq", lambda: weight_square_sums(self.weight), self.weight)
        dcoefs = demodulation_coefficients(wsq, styles)
        if use_fused(self.fir_impl, x, FUSED_SG2_OP):
            return self._fused(x, styles, dcoefs, noise_mode)
        if self.up == 1:
            x = modulated_conv2d(x, self.weight, styles, dcoefs, padding=self.padding)
        else:
            weight = self.weight.transpose(0, 1)  # [I, O, k, k]: conv_transpose2d's layout
            if fold_modulation(x):  # the blur is linear per channel, so the demodulation folds in before it
                weight = weight * styles.reshape(-1, 1, 1, 1) * dcoefs.reshape(1, -1, 1, 1)
                x = F.conv_transpose2d(x, weight.to(x.dtype), stride=self.up)
                x = self.fir(x, self.resample_filter)
            else:
                x = x * styles.to(x.dtype).unsqueeze(2).unsqueeze(3)
                x = F.conv_transpose2d(x, weight.to(x.dtype), stride=self.up)
                x = self.fir(x, self.resample_filter)
                x = x * dcoefs.to(x.dtype).unsqueeze(2).unsqueeze(3)
        if self.use_noise and noise_mode != "none":
            if noise_mode == "const":
                noise = self.noise_const.reshape(1, 1, self.resolution, self.resolution)
            else:
                noise = torch.randn_like(x[:, :1])
            x = x + (noise * self.noise_strength).to(x.dtype)
        x = x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)
        return lrelu_clamp(x, LRELU_GAIN, LRELU_SLOPE, self.conv_clamp)

    def _fused(self, x: torch.Tensor, styles: torch.Tensor, dcoefs: torch.Tensor, noise_mode: str) -> torch.Tensor:
        """The convolution as in forward, then blur, demodulation (unless folded), noise, bias and activation in
        one kernel. The demodulation folds into the weight where forward folds it (batch 1): without it an fp16
        convolution output would be about sqrt(I * k^2) times larger."""
        fold = fold_modulation(x)
        if self.up == 1:
            x = modulated_conv2d(x, self.weight, styles, dcoefs if fold else None, padding=self.padding)
        else:
            weight = self.weight.transpose(0, 1)  # [I, O, k, k]
            if fold:
                weight = weight * styles.reshape(-1, 1, 1, 1) * dcoefs.reshape(1, -1, 1, 1)
            else:
                x = x * styles.to(x.dtype).unsqueeze(2).unsqueeze(3)
            x = F.conv_transpose2d(x, weight.to(x.dtype), stride=self.up)
        noise = strength = None
        if self.use_noise and noise_mode != "none":
            strength = self.noise_strength
            if noise_mode == "const":
                noise = self.noise_const.reshape(1, 1, self.resolution, self.resolution)
            else:  # the draws of forward's randn_like on its [B, 1, R, R] slice
                noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], dtype=x.dtype, device=x.device)
        fir, f = (self.fir, self.resample_filter) if self.up > 1 else (None, None)
        scale = None if fold else dcoefs
        return fused_or_plain(
            FUSED_SG2_OP,
            lambda: fused_fir_bias_act(x, fir, f, scale, noise, strength, self.bias, LRELU_GAIN, LRELU_SLOPE,
                                       self.conv_clamp, self.fused_cache),
            lambda: fir_bias_act_reference(x, fir, f, scale, None if noise is None else noise * strength, self.bias,
                                           LRELU_GAIN, LRELU_SLOPE, self.conv_clamp))


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation: features -> image channels."""

    def __init__(
        self,
        in_channels: int,  # input channels
        out_channels: int,  # image channels
        w_dim: int,  # w width
        kernel_size: int = 1,  # conv kernel size
        conv_clamp: float | None = None,  # clamp of the output
        **unused,  # channels_last - accepted for official kwargs
    ):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # [B, I, H, W] -> [B, C, H, W]
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, None, padding=self.padding, bias=self.bias)
        return lrelu_clamp(x, 1.0, 1.0, self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (const or upsampling conv) + conv, and the skip-connection image update."""

    def __init__(
        self,
        in_channels: int,  # 0 for the first (4x4 const) block
        out_channels: int,  # channels at this resolution
        w_dim: int,  # w width
        resolution: int,  # this block's resolution
        img_channels: int,  # image channels
        is_last: bool,  # the final resolution
        architecture: str = "skip",  # 'skip' or 'orig' ('resnet' is not implemented)
        resample_filter: list[float] = (1, 3, 3, 1),  # low-pass taps for upsampling
        conv_clamp: float | None = None,  # activation clamp
        use_fp16: bool = False,  # eligible for fp16 when the network runs in fp16
        **layer_kwargs,  # kernel_size, channels_last, fused_modconv_default, ...
    ):
        super().__init__()
        if architecture not in ("skip", "orig"):
            raise UnsupportedNetworkError(f"StyleGAN2 generator architecture {architecture!r} is not supported")
        layer_kwargs = {k: v for k, v in layer_kwargs.items() if k in ("kernel_size", "use_noise")}
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.is_last, self.architecture, self.use_fp16 = is_last, architecture, use_fp16
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution,
                                    conv_clamp=conv_clamp, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        fk = len(resample_filter)
        p0, p1 = (fk + 1) // 2, (fk - 2) // 2  # upsample2d padding for up=2
        self.img_upsample = FirFilter(fk, False, img_channels, up=2, padding=(p0, p1, p0, p1), gain=4)

    def forward(
        self,
        x: torch.Tensor | None,  # [B, I, R/2, R/2] or None for the first block
        img: torch.Tensor | None,  # [B, C, R/2, R/2] float32 or None
        ws: torch.Tensor,  # [B, num_conv + num_torgb, w_dim]
        dtype: torch.dtype,  # compute dtype
        noise_mode: str,  # see NOISE_MODES
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        w_iter = iter(ws.unbind(dim=1))
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        else:
            x = self.conv0(x.to(dtype), next(w_iter), noise_mode)
        x = self.conv1(x, next(w_iter), noise_mode)
        if img is not None:
            img = self.img_upsample(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter)).to(torch.float32)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [B, num_ws, w_dim] -> images [B, C, R, R] float32 in about [-1, 1]."""

    def __init__(
        self,
        w_dim: int,  # w width
        img_resolution: int,  # output resolution (power of two)
        img_channels: int,  # output channels
        channel_base: int = 32768,  # overall multiplier for the number of channels
        channel_max: int = 512,  # max channels in any layer
        num_fp16_res: int = 4,  # fp16 in the highest resolutions
        **block_kwargs,  # architecture, conv_clamp, resample_filter, ...
    ):
        super().__init__()
        log2 = int(np.log2(img_resolution))
        if img_resolution != 2**log2 or img_resolution < 4:
            raise UnsupportedNetworkError(f"StyleGAN2 resolution must be a power of two >= 4, got {img_resolution}")
        if min(channel_base // img_resolution, channel_max) < 1:  # channels fall as channel_base / resolution
            raise UnsupportedNetworkError(f"StyleGAN2 channel_base {channel_base} with channel_max {channel_max} leaves "
                                          f"no channels at {img_resolution} px")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                in_channels=channels[res // 2] if res > 4 else 0,
                out_channels=channels[res],
                w_dim=w_dim,
                resolution=res,
                img_channels=img_channels,
                is_last=(res == img_resolution),
                use_fp16=(res >= fp16_resolution),
                **block_kwargs,
            )
            self.num_ws += block.num_conv
            if res == img_resolution:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def forward(
        self,
        ws: torch.Tensor,  # [B, num_ws, w_dim]
        transforms: torch.Tensor | None = None,  # must be None: StyleGAN2 has no input transform
        noise_mode: str = "const",  # see NOISE_MODES
        precision: str = "fp32",  # fp16 / bf16: the blocks marked use_fp16 compute in that dtype (official policy)
    ) -> torch.Tensor:  # [B, img_channels, R, R] float32
        if transforms is not None:
            raise InputError(NO_TRANSFORM)
        low = low_precision_dtype(check_precision(precision, TORCH_PRECISIONS))
        if noise_mode not in NOISE_MODES:
            raise InputError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        assert_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            dtype = low if (low is not None and block.use_fp16) else torch.float32
            x, img = block(x, img, block_ws, dtype, noise_mode)
        return img
