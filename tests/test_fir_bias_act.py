"""The fused StyleGAN2 layer epilogue (Triton) against the plain path: every official layer shape, whole networks.

Without CUDA the kernel runs on CPU tensors in Triton's interpreter (tests/triton_cpu.py), as the fused
StyleGAN3 op's tests do; they skip with the reason where triton is not installed.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

import triton_cpu
from triton_cpu import interpreter_for_module  # noqa: F401  (autouse: Triton's interpreter without CUDA)
from refdata import PARITY_TOL, reference_io
from sg3rt.networks import filtered_lrelu as fl
from sg3rt.networks.configs import official_stylegan2_layers
from sg3rt.networks.layers import set_fir_impl
from sg3rt.networks.stylegan2 import SynthesisLayer

DEVICE = triton_cpu.device()
FP32_REL_TOL = 1e-5  # fused vs plain, fp32: max error relative to the largest output
LOWP_FACTOR = 2.0  # fp16 / bf16: fused error vs fp32 at most this times the plain path's own error ...
LOWP_SLACK = {torch.float16: 2e-3, torch.bfloat16: 2e-2}  # ... plus this much of the largest output
STYLEGAN2_REFERENCES = ["sg2_64", "sg2tf_64"]  # official-format StyleGAN2 networks with official outputs


OFFICIAL_LAYERS = official_stylegan2_layers()


def test_official_layer_list_covers_the_configs():
    """Every resolution 4..1024 with its plain conv, 8..1024 with its upsampling conv, each with noise and clamp."""
    keys = {(layer.resolution, layer.up) for _, layer in OFFICIAL_LAYERS}
    assert keys == {(2**i, 1) for i in range(2, 11)} | {(2**i, 2) for i in range(3, 11)}
    assert all(layer.use_noise and layer.conv_clamp == 256 for _, layer in OFFICIAL_LAYERS)


def _random_layer(layer: SynthesisLayer, seed: int) -> SynthesisLayer:
    """A copy with random bias and noise strength (both start at zero), on the test device."""
    layer = copy.deepcopy(layer).to(DEVICE)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen))
        layer.noise_strength.fill_(0.5)
    return layer


def _inputs(layer: SynthesisLayer, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    size = layer.resolution // layer.up
    x = torch.randn([batch, layer.in_channels, size, size], generator=gen)
    w = torch.randn([batch, layer.affine.in_features], generator=gen)
    return x.to(DEVICE), w.to(DEVICE)


def _run(layer: SynthesisLayer, impl: str, x, w, dtype, noise_mode: str = "const") -> torch.Tensor:
    set_fir_impl(layer, impl)
    torch.manual_seed(11)  # the same draws for noise_mode="random" on both paths
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the fused op must not fall back here
        return layer(x.to(dtype), w, noise_mode).float()


@pytest.mark.parametrize("batch", [1, 2], ids=["b1-folded", "b2-demod-in-kernel"])
@pytest.mark.parametrize("name,layer", OFFICIAL_LAYERS, ids=[n for n, _ in OFFICIAL_LAYERS])
def test_official_layer_fp32(name, layer, batch):
    layer = _random_layer(layer, 1)
    x, w = _inputs(layer, batch, 2)
    plain = _run(layer, "conv", x, w, torch.float32)
    fused = _run(layer, "fused", x, w, torch.float32)
    assert fused.shape == plain.shape == (batch, layer.out_channels, layer.resolution, layer.resolution)
    assert (fused - plain).abs().max().item() <= FP32_REL_TOL * plain.abs().max().item()


LOWP_LAYERS = [(n, layer) for n, layer in OFFICIAL_LAYERS if layer.resolution <= 256]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("name,layer", LOWP_LAYERS, ids=[n for n, _ in LOWP_LAYERS])
def test_official_layer_low_precision(name, layer, dtype):
    """Within the dtype's rounding: no worse than the plain path in that dtype, both against fp32."""
    layer = _random_layer(layer, 3)
    x, w = _inputs(layer, 2, 4)
    x = x.to(dtype).float()  # the same input values on every path
    exact = _run(layer, "conv", x, w, torch.float32)
    plain = _run(layer, "conv", x, w, dtype)
    fused = _run(layer, "fused", x, w, dtype)
    plain_err, fused_err = (plain - exact).abs().max().item(), (fused - exact).abs().max().item()
    assert fused_err <= LOWP_FACTOR * plain_err + LOWP_SLACK[dtype] * exact.abs().max().item()


@pytest.mark.parametrize("noise_mode", ["random", "none"])
@pytest.mark.parametrize("batch", [1, 3])
def test_noise_modes(noise_mode, batch):
    """Fresh noise draws what the plain path draws (one map per sample); "none" adds nothing."""
    name, layer = next((n, l) for n, l in OFFICIAL_LAYERS if l.resolution == 64 and l.up == 2)
    layer = _random_layer(layer, 5)
    x, w = _inputs(layer, batch, 6)
    plain = _run(layer, "conv", x, w, torch.float32, noise_mode)
    fused = _run(layer, "fused", x, w, torch.float32, noise_mode)
    assert (fused - plain).abs().max().item() <= FP32_REL_TOL * plain.abs().max().item()
    if noise_mode == "random" and batch > 1:  # the per-sample maps differ, so identical inputs give different images
        same = _run(layer, "fused", x[:1].expand_as(x).contiguous(), w[:1].expand_as(w), torch.float32, noise_mode)
        assert (same[0] - same[1]).abs().max().item() > 1e-3


def test_kernel_sees_strides_and_odd_sizes():
    """A channels-last input and a size that is not a multiple of the tile: the same as the plain path."""
    from sg3rt.networks.fir_bias_act import fir_bias_act_reference, fused_fir_bias_act

    _, layer = next((n, l) for n, l in OFFICIAL_LAYERS if l.resolution == 32 and l.up == 2)
    layer = _random_layer(layer, 7)
    gen = torch.Generator().manual_seed(8)
    x = torch.randn([2, 2, 37, 53], generator=gen).to(DEVICE).to(memory_format=torch.channels_last)
    scale = torch.rand([2, 2], generator=gen).to(DEVICE) + 0.5
    noise = torch.randn([2, 1, 36, 52], generator=gen).to(DEVICE)
    strength = torch.tensor(0.7, device=DEVICE)
    args = (layer.bias, 2**0.5, 0.2, 0.3)
    plain = fir_bias_act_reference(x, layer.fir, layer.resample_filter, scale, noise * strength, *args)
    with torch.no_grad():
        fused = fused_fir_bias_act(x, layer.fir, layer.resample_filter, scale, noise, strength, *args,
                                   block=(16, 32))
    assert fused.shape == plain.shape == (2, 2, 36, 52)
    assert (fused - plain).abs().max().item() <= FP32_REL_TOL * plain.abs().max().item()
    assert plain.abs().max().item() == pytest.approx(0.3)  # the clamp bit


# ------------------------------------------------------------------------------------------------
# Whole networks against the official outputs.


CPU_SKIPPED_RUN = ("sg2_64", 3)  # 70 s in Triton's interpreter (one program per channel map: 64 channels)


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", STYLEGAN2_REFERENCES)
def test_fused_network_matches_official(load_reference, name, batch):
    """Synthesis with every layer fused, const and no noise, against the official float32 outputs."""
    if DEVICE == "cpu" and (name, batch) == CPU_SKIPPED_RUN:
        pytest.skip(f"{CPU_SKIPPED_RUN} takes minutes in Triton's interpreter; it runs where CUDA is available")
    G, io = set_fir_impl(copy.deepcopy(load_reference(name)), "fused").to(DEVICE), reference_io(name)
    ws = io["ws_psi0.7"][:batch].to(DEVICE)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        img = G.synthesis(ws).cpu()
        quiet = G.synthesis(ws, noise_mode="none").cpu() if "img_noise_none" in io else None
    assert (img - io["img"][:batch]).abs().max().item() <= PARITY_TOL
    if quiet is not None:
        assert (quiet - io["img_noise_none"][:batch]).abs().max().item() <= PARITY_TOL


# ------------------------------------------------------------------------------------------------
# Dispatch: the one-line fallback names this op.


@pytest.mark.skipif(DEVICE == "cuda", reason="the CPU fallback is what this checks")
def test_forced_fused_without_a_device_warns_once_and_runs_plain(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET")
    monkeypatch.setattr(fl, "_warned", set())
    layer = _random_layer(OFFICIAL_LAYERS[1][1], 9)
    x, w = _inputs(layer, 1, 10)
    set_fir_impl(layer, "fused")
    with pytest.warns(RuntimeWarning, match="fused StyleGAN2 layer not used: the input is on cpu") as record, \
            torch.no_grad():
        out = layer(x, w)
        layer(x, w)
    assert len(record) == 1  # once per reason
    assert torch.equal(out, _run(layer, "conv", x, w, torch.float32))


def test_a_kernel_that_fails_here_warns_once_and_runs_plain_from_then_on(monkeypatch):
    from sg3rt.networks import fir_bias_act_triton

    calls = []

    def broken(*args):
        calls.append(1)
        raise RuntimeError("Triton Error [CUDA]: device kernel image is invalid\n(more lines)")

    monkeypatch.setattr(fl, "_failed", {})
    monkeypatch.setattr(fir_bias_act_triton, "fir_bias_act_op", broken)
    layer = _random_layer(OFFICIAL_LAYERS[1][1], 13)
    x, w = _inputs(layer, 2, 14)
    plain = _run(layer, "conv", x, w, torch.float32)
    set_fir_impl(layer, "fused")
    with pytest.warns(RuntimeWarning, match=r"fused StyleGAN2 layer failed here .*\(RuntimeError: Triton Error .*invalid\)"), \
            torch.no_grad():
        first = layer(x, w)
        second = layer(x, w)
    assert calls == [1] and torch.equal(first, plain) and torch.equal(second, plain)


@pytest.mark.gpu  # the interpreter's kernels run even on fake tensors, so tracing them fails on a CPU
def test_registered_op_traces_under_torch_compile():
    """torch.library.triton_op: dynamo and AOT autograd see through it (fullgraph: no graph break)."""
    from sg3rt.networks.fir_bias_act import fused_fir_bias_act

    _, layer = next((n, l) for n, l in OFFICIAL_LAYERS if l.resolution == 64 and l.up == 2)
    layer = _random_layer(layer, 12)
    x = torch.randn(2, 2, 65, 65, device=DEVICE)

    def run(x):
        return fused_fir_bias_act(x, layer.fir, layer.resample_filter, None, layer.noise_const.reshape(1, 1, 64, 64),
                                  layer.noise_strength, layer.bias, 2**0.5, 0.2, 256.0)

    with torch.no_grad():
        eager = run(x)
        torch._dynamo.reset()
        compiled = torch.compile(run, backend="aot_eager", fullgraph=True)(x)
    assert torch.equal(eager, compiled)
