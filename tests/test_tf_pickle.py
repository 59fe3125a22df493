"""TensorFlow-era StyleGAN2 pickles: read as data (nothing run), converted exactly, usable everywhere.

The reference sg2tf_64.pkl has the version-4 structure and numpy-1 names of NVlabs stylegan2 files;
NVIDIA's own conversion (stylegan2-ada-pytorch legacy.py) of it gives sg2tf_64.npz / .json and the
official outputs in sg2tf_64_io.npz. Hostile and unsupported files are built here in the same format.
"""

from __future__ import annotations

import builtins
import json
import os
import uuid
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from refdata import PARITY_TOL, reference_config, reference_file, reference_io
from sg3rt import load_generator
from sg3rt.animate import seed_z
from sg3rt.cli import app
from sg3rt.errors import NetworkFileError, UnsafePickleError, UnsupportedNetworkError
from sg3rt.networks.pickle_reader import read_network_pickle
from sg3rt.networks.tf_pickle import TF_PICKLE
from sg3rt.runtime import open_generator
from tf_format import all_networks, drop_variable, reference_states, set_variable, tf_pickle_bytes, variable

NAME = "sg2tf_64"
runner = CliRunner()


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tf_pkl() -> Path:
    return reference_file(f"{NAME}.pkl")


@pytest.fixture(scope="module")
def G(tf_pkl):
    return load_generator(tf_pkl)


@pytest.fixture
def states(tf_pkl) -> list[dict]:
    """[G, D, Gs] of the reference as plain state dicts, to edit and write back."""
    return reference_states(tf_pkl)


@pytest.fixture
def write_tf(tmp_path, monkeypatch):
    """Writes a TF-format pickle of the given networks (or any object holding network states)."""

    def write(top: Any, name: str = "net.pkl") -> Path:
        path = tmp_path / name
        path.write_bytes(tf_pickle_bytes(top, monkeypatch))
        return path

    return write


# ---------------------------------------------------------------------------------------------------
# The reference: exact conversion and official outputs.


def test_conversion_equals_nvidias(tf_pkl):
    record = read_network_pickle(tf_pkl)
    expected = np.load(reference_file(f"{NAME}.npz"))
    assert set(record.state_dict) == set(expected.files)
    for key in expected.files:
        got = record.state_dict[key].numpy()
        assert got.dtype == expected[key].dtype and got.shape == expected[key].shape, key
        assert got.tobytes() == expected[key].tobytes(), key  # bit-identical
    assert record.init_kwargs == reference_config(NAME)["init_kwargs"]
    assert record.file_format == TF_PICKLE
    assert record.class_name == "Generator" and record.child_classes["synthesis.b64.conv0"] == "SynthesisLayer"


@pytest.mark.parametrize(("key", "psi", "cutoff"),
                         [("ws_psi1.0", 1.0, None), ("ws_psi0.7", 0.7, None), ("ws_psi0.7_cutoff8", 0.7, 8)])
def test_mapping_matches_official(G, key, psi, cutoff):
    io = reference_io(NAME)
    with torch.no_grad():
        ws = G.mapping(io["z"], None, truncation_psi=psi, truncation_cutoff=cutoff)
    assert ws.shape == io[key].shape and max_err(ws, io[key]) <= PARITY_TOL


@pytest.mark.parametrize(("noise_mode", "key"), [("const", "img"), ("none", "img_noise_none")])
def test_synthesis_matches_official(G, noise_mode, key):
    io = reference_io(NAME)
    with torch.no_grad():
        img = G.synthesis(io["ws_psi0.7"], noise_mode=noise_mode)
    assert img.dtype == torch.float32 and img.shape == io[key].shape
    assert max_err(img, io[key]) <= PARITY_TOL


def test_reference_has_the_eras_numpy_names(tf_pkl):
    data = tf_pkl.read_bytes()
    assert b"numpy.core.multiarray" in data and b"numpy._core" not in data


def test_rewritten_with_todays_numpy_is_the_same(states, write_tf, tf_pkl):
    path = write_tf(states)
    if int(np.__version__.split(".")[0]) >= 2:
        assert b"numpy._core.multiarray" in path.read_bytes()  # numpy 2 writes its own module names
    ours, reference = read_network_pickle(path), read_network_pickle(tf_pkl)
    assert ours.init_kwargs == reference.init_kwargs
    assert all(torch.equal(ours.state_dict[k], v) for k, v in reference.state_dict.items())


def test_uses_gs_unless_asked_for_g(states, write_tf):
    G_state, _, Gs_state = states
    set_variable(G_state, "dlatent_avg", variable(Gs_state, "dlatent_avg") + 1)  # G differs from Gs
    path = write_tf(states)
    gs_avg = torch.from_numpy(variable(Gs_state, "dlatent_avg"))
    assert torch.equal(load_generator(path).w_avg, gs_avg)
    assert torch.equal(load_generator(path, key="Gs").w_avg, gs_avg)
    assert torch.equal(load_generator(path, key="G").w_avg, gs_avg + 1)
    with pytest.raises(NetworkFileError, match="discriminator"):
        read_network_pickle(path, key="D")
    with pytest.raises(NetworkFileError, match="no network 'G_ema'"):
        read_network_pickle(path, key="G_ema")


def test_stylegan2_ada_tf_version_5(states, write_tf, tf_pkl):
    """stylegan2-ada TF: state version 5 with graph I/O names, its synthesis built by G_synthesis."""
    for net in states:
        for state in all_networks(net):
            state.update(version=5, input_shapes=[[None, 32], [None, 0]], output_shapes=[[None, 3, 64, 64]],
                         input_names=["latents_in", "labels_in"], output_names=["images_out"])
    states[2]["components"]["synthesis"]["build_func_name"] = "G_synthesis"
    states[2]["static_kwargs"].update(num_fp16_res=0, conv_clamp=None)
    ours, reference = read_network_pickle(write_tf(states)), read_network_pickle(tf_pkl)
    assert ours.init_kwargs == reference.init_kwargs
    assert all(torch.equal(ours.state_dict[k], v) for k, v in reference.state_dict.items())


def test_conditional_stylegan2_ada_tf(states, write_tf):
    """stylegan2-ada TF embeds labels with a dense layer (mapping/LabelEmbed), as the PyTorch networks do."""
    Gs = states[2]
    for state in all_networks(Gs):
        state["static_kwargs"]["label_size"] = 2
    embed = np.arange(2 * 16, dtype=np.float32).reshape(2, 16)  # [c_dim, w_dim]: TF dense layout
    set_variable(Gs, "mapping/LabelEmbed/weight", embed)
    set_variable(Gs, "mapping/LabelEmbed/bias", np.full(16, 0.5, np.float32))
    set_variable(Gs, "mapping/Dense0/weight", np.ones((32 + 16, 24), np.float32))  # z and the embedded label
    G = load_generator(write_tf(states))
    assert G.c_dim == 2 and torch.equal(G.mapping.embed.weight, torch.from_numpy(embed.T.copy()))
    with torch.no_grad():
        ws = G.mapping(torch.ones(2, 32), torch.eye(2))
    assert ws.shape == (2, 10, 16) and not torch.equal(ws[0], ws[1])  # the label changes w


def test_orig_architecture(states, write_tf):
    """'orig' generators have a ToRGB only at the last resolution (and no image skips)."""
    Gs = states[2]
    for res in (4, 8, 16, 32):
        for part in ("weight", "bias", "mod_weight", "mod_bias"):
            drop_variable(Gs, f"synthesis/{res}x{res}/ToRGB/{part}")
    for net in all_networks(Gs):
        net["static_kwargs"]["architecture"] = "orig"
    G = load_generator(write_tf(states))
    assert G.init_kwargs["architecture"] == "orig"
    assert not hasattr(G.synthesis.b32, "torgb") and hasattr(G.synthesis.b64, "torgb")
    with torch.no_grad():
        img = G.synthesis(reference_io(NAME)["ws_psi0.7"])
    assert img.shape == (3, 3, 64, 64) and torch.isfinite(img).all()


# ---------------------------------------------------------------------------------------------------
# Nothing in the file runs.


def test_build_module_src_is_never_executed(states, write_tf, tmp_path, monkeypatch):
    marker = tmp_path / f"EXECUTED_{uuid.uuid4().hex}"
    source = f"open({str(marker)!r}, 'w').close()\nraise SystemExit('build_module_src was executed')\n"
    for net in states:
        for state in all_networks(net):
            state["build_module_src"] = source
    path = write_tf(states)

    def refuse(*args, **kwargs):
        raise AssertionError("code was compiled or executed while reading a network file")

    with monkeypatch.context() as m:
        for name in ("exec", "eval", "compile"):
            m.setattr(builtins, name, refuse)
        G = load_generator(path)
    assert not marker.exists()
    assert G.kind == "stylegan2"


class _RunsShellCommand:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_foreign_global_in_the_state_is_refused_and_not_run(states, write_tf, tmp_path):
    marker = tmp_path / f"PWNED_{uuid.uuid4().hex}"
    states[2]["components"]["synthesis"]["static_kwargs"]["hook"] = _RunsShellCommand(f"touch {marker}")
    path = write_tf(states)
    with pytest.raises(UnsafePickleError, match=r"global (posix|os)\.system is not on the allow-list"):
        load_generator(path)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------------
# Broken and unsupported files: one line each, the right error type.


def _edit_kwargs(**kwargs):
    def edit(states):
        for state in all_networks(states[2]):
            state["static_kwargs"].update(kwargs)
    return edit


def _set(component: str | None, **fields):
    def edit(states):
        target = states[2] if component is None else states[2]["components"][component]
        target.update(fields)
    return edit


def _wrong_shape(states):
    set_variable(states[2], "synthesis/8x8/Conv1/weight", np.zeros((3, 3, 12, 5), np.float32))


def _missing_variable(states):
    drop_variable(states[2], "mapping/Dense3/bias")


def _label_concat(states):
    """stylegan2's conditional mapping concatenates a label projection: not the PyTorch design."""
    for state in all_networks(states[2]):
        state["static_kwargs"]["label_size"] = 2
    set_variable(states[2], "mapping/LabelConcat/weight", np.ones((2, 32), np.float32))


def _stylegan1(states):
    states[2].update(version=3, build_func_name="G_style")


@pytest.mark.parametrize(("edit", "error", "match"), [
    (_edit_kwargs(resolution_w=128), UnsupportedNetworkError, "unsupported TensorFlow kwarg 'resolution_w'"),
    (_edit_kwargs(architecture="resnet"), UnsupportedNetworkError, "architecture='resnet' is not supported"),
    (_edit_kwargs(nonlinearity="relu"), UnsupportedNetworkError, "nonlinearity='relu'"),
    (_edit_kwargs(resolution=48), UnsupportedNetworkError, "resolution=48"),
    (_set("synthesis", build_func_name="G_synthesis_stylegan_revised"), UnsupportedNetworkError,
     "build function 'G_synthesis_stylegan_revised'"),
    (_set(None, build_func_name="my_generator"), UnsupportedNetworkError, "build function 'my_generator'"),
    (_stylegan1, UnsupportedNetworkError, r"StyleGAN1 generator \(build function G_style\)"),
    (_set(None, version=6), UnsupportedNetworkError, "version 6"),
    (_wrong_shape, NetworkFileError,
     r"synthesis/8x8/Conv1/weight has shape \[3, 3, 12, 5\], expected \[3, 3, 12, 12\]"),
    (_missing_variable, NetworkFileError, "mapping/Dense3/bias is missing"),
    (_set(None, variables="none"), NetworkFileError, "malformed variables"),
    (_edit_kwargs(use_noise=np.ones((3, 3))), UnsupportedNetworkError, "use_noise=array"),
    (_label_concat, UnsupportedNetworkError, "mapping/LabelConcat"),
], ids=["resolution_w", "resnet", "nonlinearity", "resolution", "synthesis-func", "main-func", "stylegan1",
        "version", "shape", "missing", "variables", "use_noise", "label-concat"])
def test_unsupported_or_broken_networks(states, write_tf, edit, error, match):
    edit(states)
    path = write_tf(states)
    with pytest.raises(error, match=match) as info:
        load_generator(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_single_network_is_not_a_training_pickle(states, write_tf):
    with pytest.raises(NetworkFileError, match=r"single TensorFlow network, not the \(G, D, Gs\) tuple"):
        load_generator(write_tf(states[2]))


def test_missing_gs(states, write_tf):
    path = write_tf(states[:2])
    with pytest.raises(NetworkFileError, match="no Gs") as info:
        load_generator(path)
    assert "\n" not in str(info.value)


def test_truncated_file(tf_pkl, tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(tf_pkl.read_bytes()[: tf_pkl.stat().st_size // 2])
    with pytest.raises(NetworkFileError, match="truncated or corrupt") as info:
        load_generator(path)
    assert "\n" not in str(info.value)


def test_cli_error_is_one_line_and_exit_2(states, write_tf, tmp_path):
    _edit_kwargs(resolution_w=128)(states)
    path = write_tf(states)
    out = tmp_path / "x.safetensors"
    result = runner.invoke(app, ["convert", str(path), str(out)])
    assert result.exit_code == 2 and len(lines(result)) == 1 and "resolution_w" in result.output
    assert not out.exists()


# ---------------------------------------------------------------------------------------------------
# Everything works on them: info, convert, render, image, export, backends.


def test_info_says_tensorflow_era(tf_pkl):
    result = runner.invoke(app, ["info", str(tf_pkl)])
    assert result.exit_code == 0, result.output
    assert any(line.split() == ["format", *TF_PICKLE.split()] for line in lines(result))
    info = json.loads(runner.invoke(app, ["info", str(tf_pkl), "--json"]).output)
    assert info["format"] == "TensorFlow-era StyleGAN2 pickle"
    assert (info["kind"], info["z_dim"], info["w_dim"], info["num_ws"]) == ("stylegan2", 32, 16, 10)


def test_convert_round_trip_is_exact(tf_pkl, G, tmp_path):
    out = tmp_path / "tf.safetensors"
    result = runner.invoke(app, ["convert", str(tf_pkl), str(out)])
    assert result.exit_code == 0, result.output
    native = load_generator(out)
    assert native.init_kwargs == G.init_kwargs and native.file_format == "sg3rt .safetensors"
    theirs = native.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in G.state_dict().items()) and len(theirs) == len(G.state_dict())


def test_render_and_image(tf_pkl, G, tmp_path):
    result = runner.invoke(app, ["render", "-n", str(tf_pkl), "--seeds", "0-1", "--frames", "2", "-o",
                                 str(tmp_path / "a.gif")])
    assert result.exit_code == 0, result.output
    assert iio.imread(tmp_path / "a.gif", index=None).shape == (2, 64, 64, 3)
    result = runner.invoke(app, ["image", "-n", str(tf_pkl), "--seeds", "5", "--psi", "0.7", "-o",
                                 str(tmp_path / "one.png")])
    assert result.exit_code == 0, result.output
    with open_generator(G, backend="torch", device="cpu") as rt:
        ws = rt.mapping(seed_z(5, rt.z_dim)[None].astype(np.float32), None, 0.7)
        want = rt.frames(ws)[0].numpy().astype(int)
    assert np.abs(iio.imread(tmp_path / "one.png").astype(int) - want).max() <= 1


def _check_runtime(rt) -> None:
    io = reference_io(NAME)
    assert (rt.kind, rt.num_ws, rt.img_resolution) == ("stylegan2", 10, 64)
    for key, psi, cutoff in (("ws_psi1.0", 1.0, None), ("ws_psi0.7", 0.7, None), ("ws_psi0.7_cutoff8", 0.7, 8)):
        ws = rt.mapping(io["z"].numpy(), None, truncation_psi=psi, truncation_cutoff=cutoff)
        assert float((ws.cpu() - io[key]).abs().max()) <= PARITY_TOL, key
    img = rt.synthesis(io["ws_psi0.7"]).cpu()
    assert float((img - io["img"]).abs().max()) <= PARITY_TOL


def test_export_cli_and_onnxruntime_backend(tf_pkl, tmp_path):
    out = tmp_path / "onnx"
    result = runner.invoke(app, ["export", str(tf_pkl), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "verified with ONNX Runtime" in result.output
    with open_generator(out, backend="onnxruntime", device="cpu") as rt:
        _check_runtime(rt)
    with open_generator(tf_pkl, backend="onnxruntime", device="cpu") as rt:  # the cached-export path
        _check_runtime(rt)


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "tensorrt"])
def test_cuda_backends(tf_pkl, backend):
    if backend == "tensorrt":
        pytest.importorskip("tensorrt", reason="TensorRT backend needs `tensorrt`")
    if backend == "onnxruntime":
        from sg3rt.runtime.onnxruntime_backend import ort_cuda_available

        if not ort_cuda_available():
            pytest.skip("needs onnxruntime-gpu with the CUDA provider")
    io = reference_io(NAME)
    tol = 1e-3 if backend == "tensorrt" else PARITY_TOL  # TensorRT fp32: its own kernels and fusions
    with open_generator(tf_pkl, backend=backend, device="cuda", precision="fp32") as rt:
        ws = rt.mapping(io["z"].numpy(), None, truncation_psi=0.7)
        assert float((ws.cpu() - io["ws_psi0.7"]).abs().max()) <= tol
        assert float((rt.synthesis(io["ws_psi0.7"]).cpu() - io["img"]).abs().max()) <= tol
