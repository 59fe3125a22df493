"""The fused filtered leaky ReLU on a CPU (numba kernels, networks/filtered_lrelu_cpu.py) against the plain path.

Every official layer shape at its official size, generic shapes and filters (non-square, odd, asymmetric taps,
no up- or down-filter), batches with the demodulation in the kernel, whole reference networks against the
official outputs through the default (`auto`) path, and the dispatch: when it runs, the one-line fallbacks.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

pytest.importorskip("numba", reason="numba is not installed (the CPU kernels need it)")

from refdata import PARITY_TOL, STYLEGAN3_REFERENCES, reference_io  # noqa: E402
from sg3rt.networks import filtered_lrelu as fl  # noqa: E402
from sg3rt.networks import filtered_lrelu_cpu as flc  # noqa: E402
from sg3rt.networks import stylegan3  # noqa: E402
from sg3rt.networks.configs import official_layers  # noqa: E402
from sg3rt.networks.layers import LRELU_SLOPE, set_fir_impl  # noqa: E402

FP32_REL_TOL = 1e-5  # kernel vs plain, fp32: max error relative to the largest output
FILTERED_LAYERS = [(n, layer) for n, layer in official_layers() if not layer.is_torgb]


@pytest.fixture(autouse=True)
def no_interpreter(monkeypatch):
    """These tests are about the CPU kernels: Triton's interpreter (other test modules) must not be on."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)


@pytest.fixture
def spy(monkeypatch):
    """Counts the CPU kernel's calls made by the network layers."""
    calls = []
    real = stylegan3.filtered_lrelu_cpu

    def counted(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(stylegan3, "filtered_lrelu_cpu", counted)
    return calls


def _random_layer(layer, seed: int):
    layer = copy.deepcopy(layer)
    with torch.no_grad():
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=torch.Generator().manual_seed(seed)))
    return layer


def _run(layer, impl: str, x, w) -> torch.Tensor:
    set_fir_impl(layer, impl)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback here
        return layer(x, w)


def _inputs(layer, seed: int, batch: int = 1, size: int | None = None):
    gen = torch.Generator().manual_seed(seed)
    size = size or layer.in_size
    x = torch.randn([batch, layer.in_channels, size, size], generator=gen)
    return x, torch.randn([batch, layer.affine.in_features], generator=gen)


@pytest.mark.parametrize("name,layer", FILTERED_LAYERS, ids=[n for n, _ in FILTERED_LAYERS])
def test_official_layer_fp32(name, layer, spy):
    """Every distinct layer of the official T/R configs at 256-1024 px, at its official input size."""
    layer = _random_layer(layer, 1)
    x, w = _inputs(layer, 2)
    plain = _run(layer, "conv", x, w)
    fused = _run(layer, "auto", x, w)
    assert len(spy) == 1, "the CPU kernel did not run"
    assert fused.shape == plain.shape and fused.is_contiguous(memory_format=torch.channels_last)
    assert (fused - plain).abs().max().item() <= FP32_REL_TOL * plain.abs().max().item()


BATCH_LAYERS = [(n, layer) for n, layer in FILTERED_LAYERS if layer.in_size <= 160]


@pytest.mark.parametrize("name,layer", BATCH_LAYERS, ids=[n for n, _ in BATCH_LAYERS])
def test_official_layer_batch_demodulates_in_the_kernel(name, layer):
    """Batch 3: the demodulation is the kernel's per-map scale (not folded into the conv weight)."""
    layer = _random_layer(layer, 13)
    x, w = _inputs(layer, 14, batch=3)
    plain, fused = _run(layer, "conv", x, w), _run(layer, "auto", x, w)
    assert fused.shape == plain.shape and fused.shape[0] == 3
    assert (fused - plain).abs().max().item() <= FP32_REL_TOL * plain.abs().max().item()
    single = _run(layer, "auto", x[1:2], w[1:2])  # an image does not depend on its batch
    assert (single - fused[1:2]).abs().max().item() <= FP32_REL_TOL * plain.abs().max().item()


def _taps(k: int, seed: int, two_d: bool, symmetric: bool) -> torch.Tensor:
    f = torch.rand([k, k] if two_d else [k], generator=torch.Generator().manual_seed(seed)) + 0.1
    if symmetric:
        f = f + f.flip(0) if not two_d else (lambda g: g + g.t())(f + f.flip(0) + f.flip(1) + f.flip(0).flip(1))
    return f / f.sum()


GENERIC = [  # (B, C, H, W), up taps, down taps, up, down, padding (px0, px1, py0, py1), 2-D down, symmetric, clamp
    ((1, 3, 20, 20), 12, 12, 2, 2, (11, 10, 11, 10), True, True, 256.0),
    ((2, 5, 17, 23), 12, 12, 2, 2, (9, 8, 12, 11), True, False, 0.5),  # odd, non-square, asymmetric, clamping
    ((1, 4, 19, 13), 24, 12, 4, 2, (21, 20, 23, 22), False, True, None),
    ((1, 3, 16, 16), 11, 7, 2, 2, (5, 4, 6, 5), True, True, 1.0),  # odd taps: a middle row and column
    ((1, 3, 15, 18), 12, 1, 2, 1, (6, 5, 6, 5), False, True, None),  # no down-filter
    ((1, 3, 22, 21), 1, 12, 1, 2, (0, 1, -2, 3), True, False, None),  # no up-filter, a crop
    ((1, 17, 16, 16), 12, 12, 2, 2, (-2, -1, 8, 7), False, False, None),  # C not a vector multiple, crop in x
]


@pytest.mark.parametrize("shape,ku,kd,up,down,padding,down_2d,symmetric,clamp", GENERIC)
def test_generic_op_matches_reference(shape, ku, kd, up, down, padding, down_2d, symmetric, clamp):
    gen = torch.Generator().manual_seed(sum(shape) + ku + kd)
    x = torch.randn(shape, generator=gen) * 4
    bias = torch.randn([shape[1]], generator=gen)
    scale = torch.rand([shape[0], shape[1]], generator=gen) + 0.5
    fu = None if ku == 1 else _taps(ku, 1, False, symmetric)
    fd = None if kd == 1 else _taps(kd, 2, down_2d, symmetric)
    args = (x, bias, fu, fd, up, down, padding, up * up * 1.4, 1.0, LRELU_SLOPE, clamp)
    ref = fl.filtered_lrelu_reference(*args, scale=scale)
    out = flc.filtered_lrelu_cpu(*args, {}, scale=scale)
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() <= FP32_REL_TOL * ref.abs().max().item()
    if clamp is not None and clamp < 1:  # the clamp is exercised: without it the output differs
        unclamped = fl.filtered_lrelu_reference(*args[:-1], None, scale=scale)
        assert (unclamped - ref).abs().max().item() > 0.1 * ref.abs().max().item()


@pytest.mark.parametrize("gain,slope,clamp", [(1.7, 0.05, 2.0), (0.3, 1.0, None), (2.0, 0.0, 0.7)])
def test_activation_gain_and_slope(gain, slope, clamp):
    """The gain is folded into the vertical taps and the leaky ReLU is max(v, slope * v): any gain > 0, slope in
    [0, 1], with and without the clamp, as the reference computes them."""
    gen = torch.Generator().manual_seed(21)
    x, bias = torch.randn([1, 6, 18, 18], generator=gen) * 3, torch.randn([6], generator=gen)
    args = (x, bias, _taps(12, 1, False, True), _taps(12, 2, True, True), 2, 2, (11, 10, 11, 10), 5.6, gain, slope,
            clamp)
    ref, out = fl.filtered_lrelu_reference(*args), flc.filtered_lrelu_cpu(*args, {})
    assert (out - ref).abs().max().item() <= FP32_REL_TOL * ref.abs().max().item()


@pytest.mark.parametrize("gain,slope", [(0.0, 0.2), (-1.0, 0.2), (1.0, 1.5), (1.0, -0.1)])
def test_activation_outside_the_kernels_range_is_refused(gain, slope):
    x = torch.randn([1, 3, 18, 18])
    with pytest.raises(ValueError, match="gain > 0 and a slope in"):
        flc.filtered_lrelu_cpu(x, torch.zeros(3), _taps(12, 1, False, True), _taps(12, 2, True, True), 2, 2,
                               (11, 10, 11, 10), 5.6, gain, slope, None, {})


def test_plans_are_cached_per_filter_and_size():
    layer = _random_layer(FILTERED_LAYERS[0][1], 5)
    x, w = _inputs(layer, 6)
    _run(layer, "auto", x, w)
    first = next(iter(layer.fused_cache.values()))
    _run(layer, "auto", x, w)
    assert next(iter(layer.fused_cache.values())) is first
    with torch.no_grad():
        layer.down_filter.mul_(2)  # an in-place change to the taps makes a new plan
    _run(layer, "auto", x, w)
    assert next(iter(layer.fused_cache.values())) is not first and len(layer.fused_cache) == 1


def test_symmetric_filters_are_folded_and_asymmetric_ones_are_not():
    layer = FILTERED_LAYERS[0][1]
    plan = flc.cpu_plan(layer.up_filter, layer.down_filter, layer.up, layer.down, layer.padding,
                        layer.upsample.gain, layer.in_size, layer.in_size)
    assert plan.sym_x and plan.sym_y  # the official filters (radial or not) are symmetric
    skew = layer.down_filter.clone()
    skew.view(-1)[0] += 1e-3
    plan = flc.cpu_plan(layer.up_filter, skew, layer.up, layer.down, layer.padding, layer.upsample.gain, 36, 36)
    assert not (plan.sym_x and plan.sym_y)


# ------------------------------------------------------------------------------------------------
# Whole networks against the official outputs, through the default path.


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", STYLEGAN3_REFERENCES)
def test_network_matches_official(load_reference, name, batch, spy):
    """Plain and transformed synthesis on a CPU (fir auto: the kernels), against the official float32 outputs."""
    G, io = copy.deepcopy(load_reference(name)), reference_io(name)
    ws = io["ws_psi0.7"][:batch]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        img = G.synthesis(ws)
        moved = G.synthesis(ws, io["input_transform"])
    layers = sum(1 for n in G.synthesis.layer_names if not getattr(G.synthesis, n).is_torgb)
    assert len(spy) == 2 * layers
    assert (img - io["img"][:batch]).abs().max().item() <= PARITY_TOL
    assert (moved - io["img_transformed"][:batch]).abs().max().item() <= PARITY_TOL


# ------------------------------------------------------------------------------------------------
# Dispatch.


def test_auto_and_fused_run_the_kernels_on_a_cpu_conv_and_matmul_do_not():
    x = torch.randn(1, 2, 8, 8)
    fu = torch.ones(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fl.use_fused_cpu("auto", x, fu) and fl.use_fused_cpu("fused", x, fu)
        assert not fl.use_fused_cpu("conv", x, fu) and not fl.use_fused_cpu("matmul", x, fu)
        assert not fl.use_fused_cpu("auto", x.half(), fu)  # fp16 on a CPU: the plain path, silently


def test_under_the_triton_interpreter_fused_means_triton(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    x = torch.randn(1, 2, 8, 8)
    assert not fl.use_fused_cpu("fused", x, None) and fl.use_fused_cpu("auto", x, None)


def test_without_numba_one_warning_and_the_plain_path(monkeypatch, spy):
    monkeypatch.setattr(fl, "_warned", set())
    monkeypatch.setattr(flc, "numba_import_error", lambda: "numba does not import (ImportError: test; pip install numba)")
    layer = _random_layer(FILTERED_LAYERS[0][1], 7)
    x, w = _inputs(layer, 8)
    set_fir_impl(layer, "auto")
    with pytest.warns(RuntimeWarning, match=r"fused filtered lrelu \(CPU\) not used: numba does not import") as rec, \
            torch.no_grad():
        out = layer(x, w)
        layer(x, w)
    assert len(rec) == 1 and not spy
    assert torch.equal(out, _run(layer, "conv", x, w))


def test_gradients_and_tracing_take_the_plain_path(monkeypatch):
    monkeypatch.setattr(fl, "_warned", set())
    x = torch.randn(1, 2, 8, 8, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="no backward"):
        assert not fl.use_fused_cpu("auto", x, None)
    with torch.no_grad():
        assert fl.use_fused_cpu("auto", x, None)
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not fl.use_fused_cpu("auto", x.detach(), None)  # export traces the plain path, silently


def test_a_kernel_that_fails_warns_once_and_runs_plain_from_then_on(monkeypatch):
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("LLVM ERROR: test")  # e.g. a numba/llvmlite build that cannot compile here

    monkeypatch.setattr(fl, "_failed", {})
    monkeypatch.setattr(stylegan3, "filtered_lrelu_cpu", broken)
    layer = _random_layer(FILTERED_LAYERS[0][1], 15)
    x, w = _inputs(layer, 16, batch=2)
    plain = _run(layer, "conv", x, w)
    set_fir_impl(layer, "auto")
    with pytest.warns(RuntimeWarning, match=r"fused filtered lrelu \(CPU\) failed here .*LLVM ERROR"), torch.no_grad():
        first = layer(x, w)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("error")
        second = layer(x, w)
    assert calls == [1] and not fl.use_fused_cpu("auto", x, None)
    assert torch.equal(first, plain) and torch.equal(second, plain)


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_inside_the_kernel_stops_the_call_and_keeps_the_kernel(monkeypatch, interrupt):
    """Ctrl-C or SIGTERM (the CLI raises a KeyboardInterrupt) that lands inside numba's dispatcher comes back as a
    SystemError caused by the interrupt: it must stop the render, not count as a broken kernel (which swallowed
    the interrupt and rendered on with the plain path)."""
    real = stylegan3.filtered_lrelu_cpu
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            try:
                raise interrupt()
            except BaseException as e:
                raise SystemError("CPUDispatcher(<function act_down>) returned a result with an exception set") from e
        return real(*args, **kwargs)

    monkeypatch.setattr(fl, "_failed", {})
    monkeypatch.setattr(stylegan3, "filtered_lrelu_cpu", interrupted)
    layer = _random_layer(FILTERED_LAYERS[0][1], 17)
    x, w = _inputs(layer, 18)
    set_fir_impl(layer, "auto")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("error")  # no "failed here" warning
        with pytest.raises(interrupt):
            layer(x, w)
        layer(x, w)  # the kernel is still used
    assert fl.FUSED_CPU_OP not in fl._failed and len(calls) == 2


def test_a_real_signal_while_rendering_stops_the_render(monkeypatch):
    """A signal whose handler raises (as the CLI's SIGTERM/SIGHUP do), sent while a network renders frame after
    frame through the kernels, stops it: before the fix above, most such signals landed in numba's dispatcher
    and the render went on with the plain path."""
    import os
    import signal
    import threading

    from sg3rt.networks.default import default_generator

    class Stop(KeyboardInterrupt):
        pass

    def handler(signum, frame):
        raise Stop()

    monkeypatch.setattr(fl, "_failed", {})
    G = default_generator()
    ws = G.mapping(torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(0)))
    previous = signal.signal(signal.SIGUSR1, handler)
    timer = threading.Timer(0.4, lambda: os.kill(os.getpid(), signal.SIGUSR1))
    frames = 0
    try:
        timer.start()
        with pytest.raises(Stop), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            while frames < 500:  # ~30 s: far longer than the 0.4 s until the signal
                G.synthesis(ws)
                frames += 1
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)
    assert frames < 500 and fl.FUSED_CPU_OP not in fl._failed


@pytest.mark.parametrize("slow", [True, False])
def test_a_first_call_that_compiles_says_so(monkeypatch, caplog, slow):
    """A machine's first run compiles the kernels (20-40 s of silence): the first call of a process says so on
    the `sg3rt` log (the CLI prints it) once it takes longer than COMPILE_NOTICE_S; a quick one says nothing."""
    import logging
    import time

    real = flc._run_kernels

    def slow_kernels(*args):
        time.sleep(0.4 if slow else 0.0)
        return real(*args)

    monkeypatch.setattr(flc, "_ready", False)
    monkeypatch.setattr(flc, "COMPILE_NOTICE_S", 0.15)
    monkeypatch.setattr(flc, "_run_kernels", slow_kernels)
    x = torch.randn([1, 3, 18, 18])
    args = (x, torch.zeros(3), _taps(12, 1, False, True), _taps(12, 2, True, True), 2, 2, (11, 10, 11, 10), 5.6, 1.0,
            LRELU_SLOPE, None, {})
    with caplog.at_level(logging.INFO, logger="sg3rt"):
        first = flc.filtered_lrelu_cpu(*args)
        flc.filtered_lrelu_cpu(*args)  # later calls are never timed
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("sg3rt")]
    if slow:
        assert len(lines) == 2 and "compiling the CPU kernels" in lines[0] and "CPU kernels ready" in lines[1]
    else:
        assert lines == []
    assert flc._ready and torch.equal(first, flc.filtered_lrelu_cpu(*args))


def test_an_empty_batch_is_an_empty_result_and_keeps_the_kernel(load_reference, monkeypatch):
    """A batch of 0 once divided by zero in the task split, and the failure switched the kernels off for the process."""
    monkeypatch.setattr(fl, "_failed", {})
    G = load_reference("sg3r_64")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        out = G.synthesis(torch.zeros(0, G.synthesis.num_ws, G.w_dim))
    assert out.shape == (0, 3, 64, 64) and fl._failed == {}
