"""TensorRT: the CPU-testable parts (cache key, cache files, errors, CLI) here; engines on a GPU."""

from __future__ import annotations

import os

import pytest
import torch
from refdata import reference_file, reference_io
from typer.testing import CliRunner

from sg3rt import BackendUnavailableError, InputError, NetworkFileError
from sg3rt.cli import app
from sg3rt.export.tensorrt_build import (
    BatchProfile,
    EngineCache,
    engine_key,
    import_tensorrt,
    key_digest,
    require_cuda_device,
)

KEY = dict(graph_sha256="ab" * 32, trt_version="10.3.0", gpu_name="NVIDIA H100", precision="fp16",
           profile=BatchProfile(1, 4, 16))


def trt_installed() -> bool:
    try:
        import_tensorrt()
    except BackendUnavailableError:
        return False
    return True


def test_batch_profile_parse():
    assert BatchProfile.parse("1:4:16") == BatchProfile(1, 4, 16)
    assert BatchProfile.parse("8") == BatchProfile(8, 8, 8)
    assert str(BatchProfile(1, 2, 3)) == "1:2:3"
    for bad in ("4:2:1", "0:1:2", "a:b:c", "1:2"):
        with pytest.raises(InputError, match="batch profile"):
            BatchProfile.parse(bad)


def test_engine_key_covers_everything():
    base = engine_key(**KEY)
    assert key_digest(base) == key_digest(engine_key(**KEY))  # stable
    changes = [dict(graph_sha256="cd" * 32), dict(trt_version="10.4.0"), dict(gpu_name="NVIDIA A100"),
               dict(precision="bf16"), dict(profile=BatchProfile(1, 8, 16)), dict(strongly_typed=True)]
    digests = {key_digest(engine_key(**{**KEY, **change})) for change in changes}
    assert len(digests) == len(changes) and key_digest(base) not in digests
    with pytest.raises(InputError, match="precision"):
        engine_key(**{**KEY, "precision": "int8"})


def test_engine_cache_stale_and_missing(tmp_path):
    cache = EngineCache(tmp_path)
    key = engine_key(**KEY)
    assert cache.load("synthesis", key) is None  # missing
    path = cache.store("synthesis", key, b"engine bytes")
    assert path.parent == tmp_path and cache.load("synthesis", key) == b"engine bytes"
    stale = {**key, "tensorrt": "10.4.0"}
    path.with_suffix(".json").write_text(__import__("json").dumps(stale))  # sidecar disagrees: stale
    assert cache.load("synthesis", key) is None
    assert cache.timing_cache_path("10.3.0", "NVIDIA H100").name == "timing-NVIDIA-H100-trt10-3-0.cache"


def test_cache_root_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SG3RT_CACHE_DIR", str(tmp_path))
    assert EngineCache().root == tmp_path / "tensorrt"


@pytest.mark.skipif(trt_installed(), reason="tensorrt is installed here")
def test_missing_tensorrt_error():
    with pytest.raises(BackendUnavailableError, match=r"TensorRT is not installed: pip install 'sg3rt\[gpu\]'"):
        import_tensorrt()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_no_gpu_error():
    with pytest.raises(BackendUnavailableError, match="CUDA GPU"):
        require_cuda_device()


@pytest.mark.skipif(trt_installed() and torch.cuda.is_available(), reason="TensorRT and a GPU are present")
def test_cli_build_without_tensorrt_or_gpu(tmp_path, monkeypatch):
    # A folder that is no export says so first (once: "TensorRT is not installed" for a typo'd path).
    result = CliRunner().invoke(app, ["build", str(tmp_path / "nope"), "--precision", "fp16", "--batch", "1:4:16"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nope: not an sg3rt export" in lines[0]
    monkeypatch.setattr("sg3rt.export.tensorrt_build.read_model_json", lambda path: object())  # an export: next
    result = CliRunner().invoke(app, ["build", str(tmp_path), "--precision", "fp16", "--batch", "1:4:16"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and ("TensorRT" in lines[0] or "CUDA" in lines[0])


# -- on a GPU with TensorRT ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trt_export(tmp_path_factory, load_reference):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    from sg3rt.export import export_onnx

    out = tmp_path_factory.mktemp("trt") / "sg3r_64"
    export_onnx(load_reference("sg3r_64"), out, source=reference_file("sg3r_64.pkl"))
    return out


@pytest.mark.gpu
@pytest.mark.parametrize("precision,tol", [("fp32", 1e-3), ("fp16", 5e-2)])
def test_tensorrt_engines(trt_export, tmp_path, precision, tol, load_reference):
    from sg3rt.runtime.tensorrt_backend import TensorRTRuntime

    io = reference_io("sg3r_64")
    rt = TensorRTRuntime(trt_export, "cuda", precision, profile=BatchProfile(1, 2, 2), cache_dir=tmp_path)
    ws = io["ws_psi0.7"]  # batch 3 > max 2: run in chunks
    transforms = torch.stack([torch.eye(3), io["input_transform"], torch.eye(3)])
    img = rt.synthesis(ws, transforms).cpu()
    assert float((img[0] - io["img"][0]).abs().max()) <= tol
    assert float((img[1] - io["img_transformed"][1]).abs().max()) <= tol
    assert float((rt.mapping(io["z"]).cpu() - io["ws_psi1.0"]).abs().max()) <= 1e-3
    assert not any(r.built for r in TensorRTRuntime(trt_export, "cuda", precision, profile=BatchProfile(1, 2, 2),
                                                     cache_dir=tmp_path).records.values())


@pytest.mark.gpu
def test_corrupt_engine_is_rebuilt_and_cuda_graph(trt_export, tmp_path):
    from sg3rt.export.tensorrt_build import load_or_build_engines
    from sg3rt.runtime.tensorrt_backend import TensorRTRuntime

    records = load_or_build_engines(trt_export, "fp32", BatchProfile(1, 2, 4), tmp_path)
    records["synthesis"].path.write_bytes(b"garbage")
    again = load_or_build_engines(trt_export, "fp32", BatchProfile(1, 2, 4), tmp_path)
    assert again["synthesis"].built and not again["mapping"].built
    ws = reference_io("sg3r_64")["ws_psi0.7"][:2]
    plain = TensorRTRuntime(trt_export, "cuda", "fp32", profile=BatchProfile(1, 2, 4), cache_dir=tmp_path)
    graph = TensorRTRuntime(trt_export, "cuda", "fp32", profile=BatchProfile(1, 2, 4), cache_dir=tmp_path,
                            cuda_graph_batch=2)
    assert torch.equal(plain.frames(ws), graph.frames(ws))
    assert os.path.exists(records["synthesis"].path)


def test_engine_io_must_be_the_graphs():
    """An engine whose inputs or outputs are not its graph's (another network's, or an export with frames=False
    against one with frames) is refused in one line naming the engine, before any call."""
    from sg3rt.export.contract import OnnxContract
    from sg3rt.runtime.tensorrt_backend import check_engine_io

    sg3 = OnnxContract(kind="stylegan3-r", z_dim=8, c_dim=0, w_dim=8, num_ws=4, img_resolution=16, img_channels=3)
    outputs = list(sg3.synthesis_outputs())
    check_engine_io("synthesis", "s.engine", ["transform", "ws"], outputs, sg3)  # the order may differ
    check_engine_io("mapping", "m.engine", ["z"], ["ws"], sg3)
    with pytest.raises(NetworkFileError, match=r"s.engine: the TensorRT engine has inputs \['ws'\] .* synthesis.onnx"):
        check_engine_io("synthesis", "s.engine", ["ws"], outputs, sg3)  # a StyleGAN2 engine: no transform
    assert outputs == ["img"]  # frames=False, the contract's default
    with pytest.raises(NetworkFileError, match="delete that engine from the cache"):
        check_engine_io("synthesis", "s.engine", ["ws", "transform"], ["img", "frames"], sg3)
    with pytest.raises(NetworkFileError, match="mapping.onnx has"):
        check_engine_io("mapping", "m.engine", ["z", "c"], ["ws"], sg3)  # a conditional network's engine
