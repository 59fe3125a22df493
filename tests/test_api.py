"""The library and the CLI say the same thing: the caller's network is never changed, defaults agree,
a closed runtime refuses calls, options a backend does not take are one-line errors."""

from __future__ import annotations

import inspect
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import typer
from refdata import reference_file
from typer.testing import CliRunner

import sg3rt
from sg3rt import InputError, RuntimeClosedError, open_generator
from sg3rt.animate import Animation, PathSpec, open_writer
from sg3rt.cli import app
from sg3rt.networks.default import default_generator

runner = CliRunner()


def fresh_generator() -> sg3rt.Generator:
    """A Generator as a user builds one: training mode, gradients on (load_generator turns both off)."""
    G = sg3rt.Generator(default_generator().kind, default_generator().init_kwargs)
    G.load_state_dict(default_generator().state_dict())
    return G


def snapshot(G) -> dict:
    return {"state": {k: v.clone() for k, v in G.state_dict().items()},
            "devices": {v.device for v in G.state_dict().values()},
            "training": [m.training for m in G.modules()],
            "grad": [p.requires_grad for p in G.parameters()]}


def assert_same(G, before: dict) -> None:
    after = snapshot(G)
    assert after["devices"] == before["devices"] and after["training"] == before["training"]
    assert after["grad"] == before["grad"]
    for key, value in before["state"].items():
        assert torch.equal(after["state"][key], value), key


def test_opening_and_exporting_leave_the_callers_network_as_it_was(tmp_path):
    G = fresh_generator()
    before = snapshot(G)
    ws = G.mapping(torch.from_numpy(np.random.RandomState(0).randn(1, G.z_dim)).float(), None).detach()
    with torch.no_grad():
        img_before = G.synthesis(ws)
    with open_generator(G, backend="torch", device="cpu", precision="fp16") as rt:
        assert rt.precision == "fp16"
        rt.frames(ws)
    assert_same(G, before)
    sg3rt.export_onnx(G, tmp_path / "fp16", precision="fp16", verify=False)
    assert_same(G, before)
    with open_generator(G, backend="onnxruntime", device="cpu") as rt:  # exports G into the cache
        rt.frames(ws)
    assert_same(G, before)
    with torch.no_grad():
        assert torch.equal(G.synthesis(ws), img_before)  # still fp32: nothing was stored on the module


def test_precision_is_per_call_not_stored():
    G = default_generator()
    assert not hasattr(G, "set_precision") and not hasattr(G.synthesis, "fp16")
    ws = G.mapping(torch.zeros(1, G.z_dim), None)
    with torch.no_grad():
        a, b = G.synthesis(ws), G.synthesis(ws, precision="fp32")
    assert torch.equal(a, b)
    with pytest.raises(InputError, match="precision must be one of fp32, fp16"):
        G.synthesis(ws, precision="int8")


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_a_closed_runtime_refuses_calls(backend):
    rt = open_generator(None, backend=backend, device="cpu")
    ws = rt.mapping(np.zeros([1, rt.z_dim], np.float32))
    rt.close()
    rt.close()  # idempotent
    for call in (lambda: rt.mapping(np.zeros([1, rt.z_dim], np.float32)), lambda: rt.synthesis(ws),
                 lambda: rt.frames(ws), lambda: rt(np.zeros([1, rt.z_dim], np.float32))):
        with pytest.raises(RuntimeClosedError, match=f"this {backend} runtime is closed"):
            call()
    assert "closed" in repr(rt)


def test_options_a_backend_does_not_take_are_one_line_errors():
    with pytest.raises(InputError, match="the torch backend takes no option 'threads'"):
        open_generator(None, backend="torch", device="cpu", threads=2)
    with pytest.raises(InputError, match="the onnxruntime backend takes no option 'profile'"):
        open_generator(None, backend="onnxruntime", device="cpu", profile=None)
    with pytest.raises(InputError, match="bf16 runs on the torch and tensorrt backends"):
        open_generator(None, backend="onnxruntime", device="cpu", precision="bf16")


def _cli_defaults(command: str) -> dict:
    click_app = typer.main.get_command(app)
    params = click_app.commands[command].params
    return {p.name: (p.default.value if hasattr(p.default, "value") else p.default) for p in params}


def test_cli_defaults_equal_the_librarys():
    lib_open = inspect.signature(open_generator).parameters
    lib_anim = inspect.signature(Animation).parameters
    lib_render = inspect.signature(sg3rt.render).parameters
    spec = PathSpec()
    for command in ("render", "image", "sticking"):
        cli = _cli_defaults(command)
        assert cli["backend"] == lib_open["backend"].default == "auto", command
        assert cli["device"] == lib_open["device"].default == "auto", command
        assert cli["precision"] is None and lib_open["precision"].default is None, command
    render = _cli_defaults("render")
    assert render["loop"] is True and spec.loop is True  # loops by default, as the official gen_video
    assert render["path"] == spec.kind and render["psi"] == spec.psi and render["space"] == spec.space
    assert render["fps"] == lib_anim["fps"].default and render["batch"] == lib_render["batch"].default
    assert render["crf"] is None and inspect.signature(open_writer).parameters["crf"].default is None  # the codec's own


def test_translate_means_the_same_in_render_and_image(tmp_path):
    """render --translate X,Y shifts every frame as image --translate X,Y shifts the still (frame 0 = seed 0)."""
    net = reference_file("sg3r_64.pkl")
    frames = tmp_path / "frames"
    r = runner.invoke(app, ["render", "-n", str(net), "--seeds", "0,1", "--frames", "2", "--translate", "0.1,-0.2",
                            "-o", str(frames) + "/"])
    assert r.exit_code == 0, r.output
    still = tmp_path / "still.png"
    r = runner.invoke(app, ["image", "-n", str(net), "--seeds", "0", "--translate", "0.1,-0.2", "-o", str(still)])
    assert r.exit_code == 0, r.output
    first = iio.imread(sorted(frames.iterdir())[0]).astype(int)
    assert np.abs(first - iio.imread(still)).max() <= 1  # the path's float64 keyframe arithmetic: rounding only
    plain = tmp_path / "plain.png"
    runner.invoke(app, ["image", "-n", str(net), "--seeds", "0", "-o", str(plain)])
    assert np.abs(iio.imread(plain).astype(int) - iio.imread(still)).max() > 20  # the shift did something
    r = runner.invoke(app, ["image", "-n", str(net), "--seeds", "0", "--translate", "circle:0.1", "-o", str(still)])
    assert r.exit_code == 2 and "a still image takes a fixed shift X,Y" in r.output


def test_top_level_api_and_a_light_import():
    assert sg3rt.open_generator is open_generator and callable(sg3rt.render) and sg3rt.Animation is Animation
    code = "import sys, sg3rt, sg3rt.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # the CLI's --help and option errors need no torch
    with pytest.raises(AttributeError):
        sg3rt.no_such_name  # noqa: B018


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_an_empty_batch_is_an_empty_result(backend):
    """B = 0: synthesis [0, C, H, W] and frames [0, H, W, C] from every backend (torch once took a chunk size of 0)."""
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    with open_generator(reference_file("sg3r_64.pkl"), backend=backend) as G:
        ws = np.zeros((0, G.num_ws, G.w_dim), np.float32)
        assert tuple(G.synthesis(ws).shape) == (0, 3, 64, 64)
        assert G.frames(ws).shape == (0, 64, 64, 3)
