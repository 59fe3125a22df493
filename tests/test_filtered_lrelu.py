"""The fused filtered-lrelu op (Triton) against the plain path: every official layer shape, whole networks.

Without CUDA the kernel runs on CPU tensors in Triton's interpreter (tests/triton_cpu.py); the tests skip
with the reason where triton is not installed. The interpreter runs each program in Python, so layers
wider than MAX_CPU_SIZE keep their official filters, factors and paddings but get a smaller input.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

import triton_cpu
from triton_cpu import interpreter_for_module  # noqa: F401  (autouse: Triton's interpreter without CUDA)
from refdata import PARITY_TOL, STYLEGAN3_REFERENCES, reference_io
from sg3rt.networks import filtered_lrelu as fl
from sg3rt.networks.configs import official_layers
from sg3rt.networks.layers import LRELU_SLOPE, set_fir_impl
from sg3rt.networks.stylegan3 import SynthesisLayer

DEVICE = triton_cpu.device()
MAX_CPU_SIZE = 280  # interpreter: official input sizes up to this run as they are (278 px: ~4 s per layer)
CPU_CROP_SIZE = 150  # interpreter: input size of the wider layers (532, 534, 1044, 1046 px)
FP32_REL_TOL = 1e-5  # fused vs plain, fp32: max error relative to the largest output
GPU_TILE_MAX_SIZE = 90  # interpreter: input size of the GPU-tile cases (many small programs are slow to interpret)
LOWP_FACTOR = 2.0  # fp16 / bf16: fused error vs fp32 at most this times the plain path's own error ...
LOWP_SLACK = {torch.float16: 2e-3, torch.bfloat16: 2e-2}  # ... plus this much of the largest output


OFFICIAL_LAYERS = official_layers()
FILTERED_LAYERS = [(n, layer) for n, layer in OFFICIAL_LAYERS if not layer.is_torgb]


def test_official_layer_list_covers_the_configs():
    """The list has what the issue names: up 2 and 4, down 2, 12/24 taps, radial 12x12, crops, critical, ToRGB."""
    layers = [layer for _, layer in OFFICIAL_LAYERS]
    assert {(l.up, l.down) for l in layers} == {(2, 2), (4, 2), (1, 1)}
    assert {l.up_filter.shape[0] for l in layers if l.up_filter is not None} == {12, 24}
    assert {tuple(l.down_filter.shape) for l in layers if l.down_filter is not None} == {(12,), (12, 12)}
    assert any(min(l.padding) < 0 for l in layers) and any(l.out_size == 1024 for l in layers)
    assert sum(l.is_torgb for l in layers) == 3 and len(FILTERED_LAYERS) > 30


def _layer_inputs(layer: SynthesisLayer, seed: int, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    size = layer.in_size
    if DEVICE == "cpu" and size > MAX_CPU_SIZE:
        size = CPU_CROP_SIZE + (size % 2)
    x = torch.randn([batch, layer.in_channels, size, size], generator=gen)
    w = torch.randn([batch, layer.affine.in_features], generator=gen)
    return x.to(DEVICE), w.to(DEVICE)


def _run_layer(layer: SynthesisLayer, impl: str, x, w, dtype) -> torch.Tensor:
    set_fir_impl(layer, impl)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the fused op must not fall back here
        return layer(x, w, dtype).float()


def _random_layer(layer: SynthesisLayer, seed: int) -> SynthesisLayer:
    layer = copy.deepcopy(layer).to(DEVICE)
    with torch.no_grad():
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=torch.Generator().manual_seed(seed)))
    return layer


@pytest.mark.parametrize("name,layer", FILTERED_LAYERS, ids=[n for n, _ in FILTERED_LAYERS])
def test_official_layer_fp32(name, layer):
    layer = _random_layer(layer, 1)
    x, w = _layer_inputs(layer, 2)
    plain = _run_layer(layer, "conv", x, w, torch.float32)
    fused = _run_layer(layer, "fused", x, w, torch.float32)
    assert fused.shape == plain.shape
    assert (fused - plain).abs().max().item() <= FP32_REL_TOL * plain.abs().max().item()


LOWP_LAYERS = [(n, layer) for n, layer in FILTERED_LAYERS if layer.in_size <= 160]


@pytest.mark.parametrize("name,layer", LOWP_LAYERS, ids=[n for n, _ in LOWP_LAYERS])
def test_official_layer_batch_demodulates_in_the_kernel(name, layer):
    """Batch 2: the demodulation is not folded into the conv weight but applied by the fused op (its scale)."""
    layer = _random_layer(layer, 13)
    x, w = _layer_inputs(layer, 14, batch=2)
    plain = _run_layer(layer, "conv", x, w, torch.float32)
    fused = _run_layer(layer, "fused", x, w, torch.float32)
    assert fused.shape == plain.shape and fused.shape[0] == 2
    assert (fused - plain).abs().max().item() <= FP32_REL_TOL * plain.abs().max().item()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("name,layer", LOWP_LAYERS, ids=[n for n, _ in LOWP_LAYERS])
def test_official_layer_low_precision(name, layer, dtype):
    """Within the dtype's rounding: no worse than the plain path in that dtype, both against fp32."""
    layer = _random_layer(layer, 3)
    x, w = _layer_inputs(layer, 4)
    exact = _run_layer(layer, "conv", x, w, torch.float32)
    plain = _run_layer(layer, "conv", x, w, dtype)
    fused = _run_layer(layer, "fused", x, w, dtype)
    plain_err, fused_err = (plain - exact).abs().max().item(), (fused - exact).abs().max().item()
    assert fused_err <= LOWP_FACTOR * plain_err + LOWP_SLACK[dtype] * exact.abs().max().item()


def gpu_tile_cases() -> list[tuple[str, SynthesisLayer, int]]:
    """(name, layer, act_block): every distinct (filter banks, tile, padding) the GPU tile sizes give the official
    layers; the other tests run the interpreter's own (bigger) tile."""
    found: dict[tuple, tuple[str, SynthesisLayer, int]] = {}
    for name, layer in FILTERED_LAYERS:
        for act_block in sorted(set(fl.ACT_BLOCK_CUDA.values())):
            p = fl.fused_plan(layer.up_filter, layer.down_filter, layer.up, layer.down, layer.padding, 1.0,
                              torch.float32, torch.device("cpu"), act_block)
            key = (act_block, p.blocks, p.tile, p.in_need, layer.padding)
            found.setdefault(key, (name, layer, act_block))
    return list(found.values())


GPU_TILE_CASES = gpu_tile_cases()


@pytest.mark.parametrize("name,layer,act_block", GPU_TILE_CASES, ids=[f"{n}-tile{a}" for n, _, a in GPU_TILE_CASES])
def test_gpu_tile_sizes_match_reference(name, layer, act_block):
    """The tiles a GPU runs (ACT_BLOCK_CUDA: 32 and 64 samples) are exact too, on inputs of up to 91 px."""
    gen = torch.Generator().manual_seed(3)
    size = min(layer.in_size + layer.conv_kernel - 1, GPU_TILE_MAX_SIZE + layer.in_size % 2)
    x = torch.randn([1, 2, size, size], generator=gen)
    bias = torch.randn([2], generator=gen)
    args = (bias, layer.up_filter, layer.down_filter, layer.up, layer.down, layer.padding, layer.upsample.gain, 1.0,
            LRELU_SLOPE, layer.conv_clamp)
    ref = fl.filtered_lrelu_reference(x, *args)
    out = fl.fused_filtered_lrelu(x.to(DEVICE), *(a.to(DEVICE) if isinstance(a, torch.Tensor) else a for a in args),
                                  act_block=act_block).cpu()
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() <= FP32_REL_TOL * ref.abs().max().item()


@pytest.mark.parametrize(
    "shape,ku,kd,up,down,padding,up_2d,down_2d,clamp,act_block",
    [
        ((2, 3, 17, 23), 12, 12, 2, 2, (11, 10, 9, 8), False, True, 0.5, 32),  # odd sizes, px != py, small tiles
        ((1, 2, 29, 19), 24, 12, 4, 2, (-2, -5, -6, -9), False, False, None, 64),  # crops, no clamp
        ((1, 2, 40, 37), 12, 12, 2, 2, (-11, -12, 3, 1), False, True, 1.0, 32),  # mixed crop / pad, many tiles
        ((2, 2, 15, 16), 4, 1, 2, 1, (2, 1, 2, 1), True, False, 2.0, 32),  # StyleGAN2-like 2-D up, no down filter
        ((1, 2, 21, 21), 1, 12, 1, 2, (0, 0, 0, 0), False, True, None, 64),  # no up-filter, radial down
    ],
)
def test_generic_op_matches_reference(shape, ku, kd, up, down, padding, up_2d, down_2d, clamp, act_block):
    gen = torch.Generator().manual_seed(sum(shape) + ku)
    x = torch.randn(shape, generator=gen)
    bias = torch.randn(shape[1], generator=gen)
    fu = None if ku == 1 else torch.randn([ku, ku] if up_2d else [ku], generator=gen)
    fd = None if kd == 1 else torch.randn([kd, kd] if down_2d else [kd], generator=gen)
    scale = torch.rand(shape[:2], generator=gen) + 0.5 if shape[0] > 1 else None  # per-map scale where batched
    args = (bias, fu, fd, up, down, padding, float(up * up), 1.3, 0.2, clamp)
    ref = fl.filtered_lrelu_reference(x, *args, scale=scale)
    x = x.to(DEVICE).to(memory_format=torch.channels_last)  # strided input
    args = tuple(a.to(DEVICE) if isinstance(a, torch.Tensor) else a for a in args)
    out = fl.fused_filtered_lrelu(x, *args, act_block=act_block, scale=None if scale is None else scale.to(DEVICE)).cpu()
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() <= FP32_REL_TOL * ref.abs().max().item()
    if clamp is not None:
        assert ref.abs().max().item() > 0  # (the clamp region is exercised by the reference's own values)


def test_filter_banks_are_cached_per_filter_and_dtype():
    layer = _random_layer(FILTERED_LAYERS[0][1], 5)
    x, w = _layer_inputs(layer, 6)
    _run_layer(layer, "fused", x, w, torch.float32)
    first = next(iter(layer.fused_cache.values()))
    _run_layer(layer, "fused", x, w, torch.float32)
    assert next(iter(layer.fused_cache.values())) is first
    with torch.no_grad():
        layer.down_filter.mul_(2)  # an in-place change to the taps invalidates the banks
    _run_layer(layer, "fused", x, w, torch.float32)
    assert next(iter(layer.fused_cache.values())) is not first and len(layer.fused_cache) == 1


# ------------------------------------------------------------------------------------------------
# Whole networks against the official outputs.


CPU_NETWORK_RUN = ("sg3r_64", 1)  # the interpreter's share: sg3t_64_cond at batch 3 + transforms took 110 s


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", STYLEGAN3_REFERENCES)
def test_fused_network_matches_official(load_reference, name, batch):
    """Plain and transformed synthesis with every layer fused, against the official float32 outputs."""
    if DEVICE == "cpu" and (name, batch) != CPU_NETWORK_RUN:
        pytest.skip(f"minutes in Triton's interpreter; {CPU_NETWORK_RUN} runs here, all run where CUDA is available")
    G, io = set_fir_impl(copy.deepcopy(load_reference(name)), "fused").to(DEVICE), reference_io(name)
    ws = io["ws_psi0.7"][:batch].to(DEVICE)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        img = G.synthesis(ws).cpu()
        moved = G.synthesis(ws, io["input_transform"].to(DEVICE)).cpu()
    assert (img - io["img"][:batch]).abs().max().item() <= PARITY_TOL
    assert (moved - io["img_transformed"][:batch]).abs().max().item() <= PARITY_TOL


# ------------------------------------------------------------------------------------------------
# Dispatch: when the fused op runs, and the one-line fallback.


def test_auto_on_cpu_is_the_plain_path_silently():
    x = torch.randn(1, 2, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not fl.use_fused("auto", x)
        assert not fl.use_fused("conv", x) and not fl.use_fused("matmul", x)


@pytest.mark.skipif(DEVICE == "cuda", reason="the CPU path is what this checks")
def test_forced_fused_without_a_gpu_runs_the_cpu_kernels(monkeypatch):
    """fir "fused" on CPU tensors outside Triton's interpreter: the CPU kernels (filtered_lrelu_cpu.py), silently."""
    pytest.importorskip("numba", reason="numba is not installed (the CPU kernels need it)")
    monkeypatch.delenv("TRITON_INTERPRET")
    monkeypatch.setattr(fl, "_warned", set())
    layer = _random_layer(FILTERED_LAYERS[0][1], 7)
    x, w = _layer_inputs(layer, 8)
    set_fir_impl(layer, "fused")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("error")
        out = layer(x, w)
    assert out.is_contiguous(memory_format=torch.channels_last)  # the CPU kernel's layout, not the plain path's
    plain = _run_layer(layer, "conv", x, w, torch.float32)
    assert (out - plain).abs().max().item() <= FP32_REL_TOL * plain.abs().max().item()


def test_a_kernel_that_fails_here_warns_once_and_runs_plain_from_then_on(monkeypatch):
    """A Triton compile or launch error (a GPU, driver or Triton build that cannot run the kernel) never stops a
    render: one warning with the error, the plain path now and for every later call."""
    from triton.runtime.errors import OutOfResources

    from sg3rt.networks import filtered_lrelu_triton

    calls = []

    def out_of_resources(*args):
        calls.append(1)
        raise OutOfResources(300_000, 101_376, "shared memory")  # a smaller GPU than the tiles were made for

    monkeypatch.setattr(fl, "_failed", {})
    monkeypatch.setattr(filtered_lrelu_triton, "filtered_lrelu_op", out_of_resources)
    layer = _random_layer(FILTERED_LAYERS[0][1], 15)
    x, w = _layer_inputs(layer, 16, batch=2)
    plain = _run_layer(layer, "conv", x, w, torch.float32)
    set_fir_impl(layer, "fused")
    with pytest.warns(RuntimeWarning, match="fused filtered lrelu failed here .*OutOfResources.*shared memory"), \
            torch.no_grad():
        first = layer(x, w)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("error")
        second = layer(x, w)
    assert calls == [1] and not fl.use_fused("fused", x)
    assert torch.equal(first, plain) and torch.equal(second, plain)


def test_gradients_fall_back_with_a_reason(monkeypatch):
    monkeypatch.setattr(fl, "_warned", set())
    x = torch.randn(1, 2, 8, 8, device=DEVICE, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="no backward"):
        assert not fl.use_fused("fused", x)
    with torch.no_grad():
        assert fl.use_fused("fused", x)


@pytest.mark.gpu  # the interpreter's kernels run even on fake tensors, so tracing them fails on a CPU
def test_registered_op_traces_under_torch_compile():
    """torch.library.triton_op: dynamo and AOT autograd see through it (fullgraph: no graph break)."""
    layer = _random_layer(FILTERED_LAYERS[0][1], 9)
    x = torch.randn(1, 2, 40, 40, device=DEVICE)
    bias, fu, fd = layer.bias, layer.up_filter, layer.down_filter
    plan = fl.fused_plan(fu, fd, layer.up, layer.down, layer.padding, layer.upsample.gain, x.dtype, x.device, 64)
    from sg3rt.networks.filtered_lrelu_triton import filtered_lrelu_op

    def run(x):
        return filtered_lrelu_op(x, None, bias, plan.wux, plan.wuy, plan.wdx, plan.wdy, 38, 38, plan.in_y0, plan.in_x0,
                                 plan.in_step, plan.tile, plan.in_need, 1.0, 0.2, 256.0, 1, 4, "ieee")

    with torch.no_grad():
        eager = run(x)
        torch._dynamo.reset()
        compiled = torch.compile(run, backend="aot_eager", fullgraph=True)(x)
    assert torch.equal(eager, compiled)


@pytest.mark.gpu  # as above: tracing the interpreter's kernels fails on a CPU
@pytest.mark.parametrize("name", ["sg3r_64", "sg2_64"])
def test_fused_network_compiles_in_one_graph(load_reference, name):
    """A whole synthesis with the fused ops (StyleGAN3's filtered lrelu, StyleGAN2's fir_bias_act), compiled after
    one eager call: one graph, no break at the filter tables' storage checks, the eager output."""
    G = set_fir_impl(copy.deepcopy(load_reference(name)), "fused").to(DEVICE)
    ws = reference_io(name)["ws_psi0.7"].to(DEVICE)
    torch._dynamo.reset()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the fused ops must run, not fall back
        eager = G.synthesis(ws)
        explained = torch._dynamo.explain(G.synthesis)(ws)
        compiled = torch.compile(G.synthesis, backend="aot_eager", fullgraph=True)(ws)
    assert explained.graph_break_count == 0 and explained.graph_count == 1, explained.break_reasons
    assert torch.equal(eager, compiled)
