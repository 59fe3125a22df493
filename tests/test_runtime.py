"""One interface over every backend on this machine: the official outputs through open_generator."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from refdata import PARITY_TOL, labels, reference_file, reference_io
from typer.testing import CliRunner

from sg3rt import BackendUnavailableError, InputError
from sg3rt.cli import app
from sg3rt.runtime import open_generator, to_uint8_frames
from sg3rt.runtime.bench import bench_runtime
from sg3rt.runtime.registry import CPU_AUTO_BACKEND, tensorrt_importable

TRT_TOL = 1e-3  # TensorRT fp32: its own conv kernels and fusions


def available_backends() -> list:
    """(backend, device, options) for every runtime this machine may have; the missing ones skip with the reason."""
    from sg3rt.runtime.onnxruntime_backend import ort_cuda_available

    cuda = torch.cuda.is_available()
    no_gpu = "needs a CUDA GPU (torch.cuda.is_available() is False)"
    return [
        pytest.param("torch", "cpu", (), id="torch-cpu"),
        pytest.param("onnxruntime", "cpu", (), id="onnxruntime-cpu"),
        pytest.param("torch", "cuda", (), id="torch-cuda", marks=pytest.mark.skipif(not cuda, reason=no_gpu)),
        pytest.param("torch", "cuda", (("cuda_graphs", True),), id="torch-cuda-graphs",
                     marks=pytest.mark.skipif(not cuda, reason=no_gpu)),
        pytest.param("onnxruntime", "cuda", (), id="onnxruntime-cuda", marks=pytest.mark.skipif(
            not ort_cuda_available(), reason="needs onnxruntime-gpu with the CUDA provider and a CUDA GPU")),
        pytest.param("tensorrt", "cuda", (), id="tensorrt-cuda", marks=pytest.mark.skipif(
            not (cuda and tensorrt_importable()), reason="TensorRT backend needs `tensorrt` and a CUDA GPU")),
    ]


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory):
    """Exports and engines of network files go to a temp cache, never to ~/.cache."""
    path = tmp_path_factory.mktemp("sg3rt-cache")
    old = os.environ.get("SG3RT_CACHE_DIR")
    os.environ["SG3RT_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("SG3RT_CACHE_DIR", None)
    else:
        os.environ["SG3RT_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def runtimes():
    """(name, backend, device, options) -> runtime, opened once per session."""
    cache = {}

    def get(name, backend, device="cpu", options=()):
        key = (name, backend, device, options)
        if key not in cache:
            precision = "fp32" if backend == "tensorrt" else None
            cache[key] = open_generator(reference_file(f"{name}.pkl"), backend=backend, device=device,
                                        precision=precision, **dict(options))
        return cache[key]

    yield get
    for rt in cache.values():
        rt.close()


@pytest.mark.parametrize("backend,device,options", available_backends())
@pytest.mark.parametrize("name", ["sg3t_64_cond", "sg2_64"])
def test_official_outputs(name, backend, device, options, runtimes):
    rt, io = runtimes(name, backend, device, options), reference_io(name)
    assert rt.device.type == device
    tol = TRT_TOL if backend == "tensorrt" else PARITY_TOL
    assert (rt.kind, rt.num_ws, rt.img_resolution) == (
        "stylegan3-t" if name.startswith("sg3") else "stylegan2", io["ws_psi1.0"].shape[1], 64)
    c = labels(io)
    for key, psi, cutoff in (("ws_psi1.0", 1.0, None), ("ws_psi0.7", 0.7, None), ("ws_psi0.7_cutoff8", 0.7, 8)):
        ws = rt.mapping(io["z"].numpy(), None if c is None else c.numpy(), truncation_psi=psi, truncation_cutoff=cutoff)
        assert float((ws.cpu() - io[key]).abs().max()) <= tol, key
    img = rt.synthesis(io["ws_psi0.7"]).cpu()
    assert img.dtype == torch.float32 and float((img - io["img"]).abs().max()) <= tol
    if rt.is_stylegan3:
        img = rt.synthesis(io["ws_psi0.7"][:1], io["input_transform"]).cpu()
        assert float((img - io["img_transformed"][:1]).abs().max()) <= tol
    frames = rt.frames(io["ws_psi0.7"])
    assert frames.dtype == torch.uint8 and frames.device.type == "cpu" and frames.shape == (3, 64, 64, 3)
    assert int((frames.int() - to_uint8_frames(io["img"]).int()).abs().max()) <= 1


def test_export_is_cached(runtimes, cache_dir):
    runtimes("sg2_64", "onnxruntime")
    before = sorted((cache_dir / "onnx").iterdir())
    with open_generator(reference_file("sg2_64.pkl"), backend="onnxruntime", device="cpu") as rt:
        assert rt.export_dir in before
    assert sorted((cache_dir / "onnx").iterdir()) == before


def test_export_dir_rules(runtimes):
    rt = runtimes("sg2_64", "onnxruntime")
    with pytest.raises(InputError, match="no PyTorch weights"):
        open_generator(rt.export_dir, backend="torch")
    with pytest.raises(InputError, match="re-export with --precision fp16"):
        open_generator(rt.export_dir, backend="onnxruntime", precision="fp16")
    with pytest.raises(InputError, match="noise_mode='const' baked in"):
        rt.synthesis(reference_io("sg2_64")["ws_psi0.7"], noise_mode="none")
    with open_generator(rt.export_dir, backend="auto", device="cpu") as auto:
        assert auto.backend == "onnxruntime"


def test_auto_and_errors(tmp_path):
    rt = open_generator(reference_file("sg2_64.pkl"), backend="auto", device="cpu")
    assert rt.backend == CPU_AUTO_BACKEND and rt.device.type == "cpu"
    with pytest.raises(InputError, match="unknown backend"):
        open_generator(None, backend="jax")
    from sg3rt import NetworkFileError

    with pytest.raises(NetworkFileError, match="not an sg3rt export"):
        open_generator(tmp_path, backend="onnxruntime")
    with pytest.raises(NetworkFileError):
        open_generator(tmp_path / "missing.pkl", backend="onnxruntime")


@pytest.mark.skipif(tensorrt_importable(), reason="tensorrt is installed here")
def test_tensorrt_missing_is_one_line():
    with pytest.raises(BackendUnavailableError, match=r"pip install 'sg3rt\[gpu\]' \(tensorrt\)"):
        open_generator(reference_file("sg2_64.pkl"), backend="tensorrt")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_ort_cuda_without_gpu(runtimes):
    with pytest.raises(BackendUnavailableError, match="CUDA"):
        open_generator(runtimes("sg2_64", "onnxruntime").export_dir, backend="onnxruntime", device="cuda")


def test_bench_runtime(runtimes):
    r = bench_runtime(runtimes("sg2_64", "torch"), batch=2, iters=2, warmup=1)
    assert (r.backend, r.batch, r.iters, r.mem_kind, r.chunk) == ("torch", 2, 2, "cpu_rss_peak", 2)  # one call (64 px)
    assert r.frames_per_s == pytest.approx(2 / r.median_s) and r.ms_per_frame == pytest.approx(500 * r.median_s)
    assert r.peak_mem_mib > 10


def test_cli_bench_json(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", str(reference_file("sg2_64.pkl")), "--backend", "torch,onnxruntime",
                                      "--batch", "1,2", "--iters", "1", "--device", "cpu", "--json", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["results"]
    assert [(r["backend"], r["batch"]) for r in rows] == [("torch", 1), ("torch", 2), ("onnxruntime", 1), ("onnxruntime", 2)]
    assert "frames/s" in result.output
    bad = CliRunner().invoke(app, ["bench", "--batch", "0,x"])
    assert bad.exit_code == 2 and "--batch" in bad.output


def test_fir_option_picks_the_form_on_a_copy(load_reference):
    """fir="conv" runs the conv FIR form on the runtime's own copy: official outputs, the caller's G as it was."""
    G = load_reference("sg3r_64")
    io = reference_io("sg3r_64")
    before = {m.impl for m in G.modules() if hasattr(m, "impl")}
    with open_generator(G, backend="torch", device="cpu", fir="conv") as rt:
        assert {m.impl for m in rt.G.modules() if hasattr(m, "impl")} == {"conv"}
        img = rt.synthesis(io["ws_psi0.7"][:1])
    assert {m.impl for m in G.modules() if hasattr(m, "impl")} == before
    assert (img - io["img"][:1]).abs().max().item() <= PARITY_TOL
    with pytest.raises(InputError, match="unknown FIR implementation 'fast'"):
        open_generator(G, backend="torch", device="cpu", fir="fast")
    with pytest.raises(InputError, match="the onnxruntime backend takes no option 'fir'"):
        open_generator(reference_file("sg3r_64.pkl"), backend="onnxruntime", device="cpu", fir="conv")


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_non_finite_inputs_are_refused(runtimes, backend):
    """A NaN or infinity in z, ws or a transform (a damaged latent file, an overflowing path) would render black
    or garbage frames without a word: every runtime refuses it, naming the input, before any work."""
    rt = runtimes("sg3r_64", backend)
    io = reference_io("sg3r_64")
    ws = np.asarray(io["ws_psi0.7"][:2], np.float32).copy()
    ws[1, 3, 5] = np.nan
    with pytest.raises(InputError, match=r"ws holds 1 NaN or infinite value \(of 2048\)"):
        rt.frames(ws)
    with pytest.raises(InputError, match="z holds 64 NaN or infinite values"):
        rt.mapping(np.full((1, rt.z_dim), np.inf, np.float32))
    transform = np.eye(3, dtype=np.float32)
    transform[0, 2] = -np.inf
    with pytest.raises(InputError, match="transforms holds 1 NaN or infinite value"):
        rt.synthesis(torch.as_tensor(ws[:1]), transform)
    assert rt.frames(ws[:1], np.eye(3, dtype=np.float32)).shape == (1, 64, 64, 3)  # finite: rendered


def test_cuda_graphs_need_cuda():
    with pytest.raises(InputError, match="CUDA graphs need a CUDA device"):
        open_generator(reference_file("sg2_64.pkl"), backend="torch", device="cpu", cuda_graphs=True)


@pytest.mark.gpu
def test_cuda_graph_replays_fresh_inputs(runtimes):
    """Each replay sees the new inputs, earlier results are not overwritten, and graphs equal eager."""
    eager = runtimes("sg3t_64_cond", "torch", "cuda")
    io = reference_io("sg3t_64_cond")
    ws = io["ws_psi0.7"].cuda()
    with open_generator(reference_file("sg3t_64_cond.pkl"), backend="torch", device="cuda", cuda_graphs=True) as graphs:
        first = graphs.synthesis(ws[:2])
        second = graphs.synthesis(ws[1:3])  # same batch: a replay of the graph captured by the first call
        assert list(graphs.graphs) == [(False, 2, True, "const")]  # images (not frames), batch 2, no transform
        assert torch.equal(first, graphs.synthesis(ws[:2]))
        assert float((second - eager.synthesis(ws[1:3])).abs().max()) <= PARITY_TOL
        assert float((first[1] - second[0]).abs().max()) <= PARITY_TOL  # sample ws[1] in both batches
        t = io["input_transform"].cuda().expand(2, 3, 3)
        assert float((graphs.frames(ws[:2], t).int() - eager.frames(ws[:2], t).int()).abs().max()) <= 1


@pytest.mark.gpu
def test_auto_on_a_gpu(runtimes):
    """Network files: TensorRT when installed, else PyTorch CUDA (measured faster than ONNX Runtime CUDA)."""
    from sg3rt.runtime.onnxruntime_backend import ort_cuda_available
    from sg3rt.runtime.registry import GPU_AUTO_BACKEND

    with open_generator(reference_file("sg2_64.pkl"), backend="auto") as rt:
        assert rt.device.type == "cuda"
        assert rt.backend == ("tensorrt" if tensorrt_importable() else GPU_AUTO_BACKEND)
    export_dir = runtimes("sg2_64", "onnxruntime").export_dir
    if tensorrt_importable() or ort_cuda_available():
        with open_generator(export_dir, backend="auto") as rt:
            assert rt.device.type == "cuda" and rt.backend != "torch"
    else:
        with pytest.raises(BackendUnavailableError, match="export directory on CUDA"):
            open_generator(export_dir, backend="auto")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_cli_cuda_graphs_need_cuda_and_torch(tmp_path):
    out = tmp_path / "x.mp4"
    result = CliRunner().invoke(app, ["render", "--seeds", "0-1", "--frames", "2", "--cuda-graphs", "-o", str(out)])
    assert result.exit_code == 2 and "CUDA graphs need a CUDA device" in result.output and not out.exists()
    with pytest.raises(InputError, match="apply to the torch backend"):
        open_generator(reference_file("sg2_64.pkl"), backend="onnxruntime", device="cpu", cuda_graphs=True)


def test_ieee_fp32_turns_tf32_off_and_restores():
    from sg3rt.runtime.torch_backend import ieee_fp32

    matmul = torch.backends.cuda.matmul
    if not hasattr(matmul, "fp32_precision"):
        pytest.skip("torch < 2.9: legacy TF32 flags only")
    before = matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision
    try:
        matmul.fp32_precision = "tf32"  # a user's setting through the new API
        with ieee_fp32():
            assert (matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision) == ("ieee", "ieee")
        assert matmul.fp32_precision == "tf32"
    finally:
        matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = before


def test_out_of_memory_halves_the_batch(monkeypatch):
    """A GPU out of memory: the batch is split until it fits, remembered, and one image too many is a one-liner."""
    from sg3rt import DeviceMemoryError

    rt = open_generator(reference_file("sg2_64.pkl"), backend="torch", device="cpu")
    ws = reference_io("sg2_64")["ws_psi0.7"].repeat(2, 1, 1)[:5]
    expected = rt.synthesis(ws)
    real, limit, calls = rt.G.synthesis.forward, [2], []

    def synthesis(ws, **kwargs):  # a device that holds `limit` images
        calls.append(ws.shape[0])
        if ws.shape[0] > limit[0]:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(ws, **kwargs)

    monkeypatch.setattr(rt.G.synthesis, "forward", synthesis)
    rt.chunk = None  # as on a GPU: no limit known yet
    with pytest.warns(RuntimeWarning, match="at batch 5: synthesising 2 images at a time"):
        img = rt.synthesis(ws)
    assert rt.chunk == 2 and calls == [5, 2, 2, 1] and float((img - expected).abs().max()) <= 1e-5
    calls.clear()
    rt.frames(ws)
    assert calls == [2, 2, 1]  # remembered
    limit[0] = 0
    with pytest.raises(DeviceMemoryError, match="out of cpu memory for one 64 px image in fp32"):
        rt.synthesis(ws[:1])


def test_cuda_graph_bookkeeping_without_a_gpu(monkeypatch):
    """_replay's keys, frame conversion and out-of-memory fallback, with the capture replaced by a plain call."""
    import sg3rt.runtime.torch_backend as tb

    class Replay:  # stands in for CapturedCall: same calling convention, no CUDA
        def __init__(self, fn, example):
            if example[0].shape[0] > 2:
                raise torch.cuda.OutOfMemoryError("simulated")
            self.fn = fn

        def __call__(self, *inputs):
            return self.fn(*inputs)

    monkeypatch.setattr(tb, "CapturedCall", Replay)
    rt = open_generator(reference_file("sg3t_64_cond.pkl"), backend="torch", device="cpu")
    io = reference_io("sg3t_64_cond")
    ws, t = io["ws_psi0.7"], io["input_transform"].expand(3, 3, 3)
    eager_img, eager_frames = rt.synthesis(ws[:2]), rt.frames(ws[:2], t[:2])
    rt.cuda_graphs = True
    assert float((rt.synthesis(ws[:2]) - eager_img).abs().max()) <= 1e-5
    assert int((rt.frames(ws[:2], t[:2]).int() - eager_frames.int()).abs().max()) <= 1
    frames3 = rt.frames(ws, t)  # capture "runs out of memory": eager frames
    assert frames3.dtype == torch.uint8 and frames3.shape == (3, 64, 64, 3)
    assert {k: v is not None for k, v in rt.graphs.items()} == {
        (False, 2, True, "const"): True, (True, 2, False, "const"): True, (True, 3, False, "const"): False}
