"""Input that used to get past the checks: device names, weight dtypes and network configs from files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from typer.testing import CliRunner

from refdata import reference_file
import sg3rt
from sg3rt import load_generator, open_generator, save_generator
from sg3rt.cli import app
from sg3rt.errors import BackendUnavailableError, InputError, NetworkFileError, UnsupportedNetworkError
from sg3rt.vocab import torch_device

runner = CliRunner()

ADDRESS_SPACE = 4 << 30  # bytes a child process may map: torch imports in it, a built 17 GB mapping network would not


def one_error_line(result) -> str:
    """The CLI's answer to bad input: exit 2 and one `error: ...` line, no traceback."""
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


# Devices ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["mps", "meta", "xla", "cuda:x", "gpu"])
def test_unknown_devices_are_an_input_error(device):
    match = rf"unknown device '{device}' \(use auto, cpu, cuda or cuda:N\)"
    with pytest.raises(InputError, match=match):
        open_generator(reference_file("sg3r_64.pkl"), backend="torch", device=device)
    with pytest.raises(InputError, match=match):
        load_generator(reference_file("sg3r_64.pkl"), device=device)


@pytest.mark.parametrize(("command", "device"), [
    (["image", "--seeds", "0"], "mps"),
    (["image", "--seeds", "0"], "meta"),
    (["bench", "--batch", "1", "--iters", "1"], "mps"),
    (["eq", "--samples", "2"], "meta"),
])
def test_cli_unknown_device_is_one_line(tmp_path, command, device):
    net = str(reference_file("sg3r_64.pkl"))
    args = [command[0], *(["-n", net] if command[0] == "image" else [net]), *command[1:], "--device", device]
    if command[0] == "image":
        args += ["-o", str(tmp_path / "out")]
    line = one_error_line(runner.invoke(app, args))
    assert f"unknown device '{device}'" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
@pytest.mark.parametrize("device", ["cuda", "cuda:7", torch.device("cuda", 0)])
def test_cuda_without_a_gpu_is_backend_unavailable(device):
    """The README's own `load_generator(p, device="cuda")` on a CPU machine: torch's AssertionError before."""
    with pytest.raises(BackendUnavailableError, match="torch sees no CUDA GPU"):
        load_generator(reference_file("sg3r_64.pkl"), device=device)
    with pytest.raises(BackendUnavailableError, match="torch sees no CUDA GPU"):
        open_generator(reference_file("sg3r_64.pkl"), backend="torch", device=device)


def test_cuda_index_beyond_the_gpus_is_backend_unavailable(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert torch_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(BackendUnavailableError, match=r"'cuda:7' requested, but torch sees 2 CUDA GPUs \(cuda:0..cuda:1\)"):
        torch_device("cuda:7")


@pytest.mark.gpu
def test_cuda_index_beyond_the_gpus_on_a_gpu_machine():
    beyond = f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(BackendUnavailableError, match=f"'{beyond}' requested"):
        load_generator(reference_file("sg3r_64.pkl"), device=beyond)
    with pytest.raises(BackendUnavailableError, match=f"'{beyond}' requested"):
        open_generator(reference_file("sg3r_64.pkl"), backend="torch", device=beyond)


def test_load_generator_takes_auto_and_device_objects():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert load_generator(reference_file("sg3r_64.pkl"), device="auto").w_avg.device.type == expected
    assert load_generator(reference_file("sg3r_64.pkl"), device=torch.device("cpu")).w_avg.device.type == "cpu"


# Weight dtypes ----------------------------------------------------------------------------------------


def read_native(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata()), {name: f.get_tensor(name) for name in f.keys()}


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    """name -> (metadata, tensors) of a reference network converted to sg3rt's .safetensors."""
    cache = {}

    def convert(name: str):
        if name not in cache:
            path = save_generator(load_generator(reference_file(f"{name}.pkl")),
                                  tmp_path_factory.mktemp("native") / f"{name}.safetensors")
            cache[name] = read_native(path)
        return cache[name]

    return convert


def edited(tmp_path: Path, native, name: str, tensors: dict | None = None, kwargs: dict | None = None,
           mapping: dict | None = None) -> Path:
    """A converted reference with some tensors replaced and some init kwargs changed."""
    metadata, original = native(name)
    init_kwargs = json.loads(metadata["init_kwargs"])
    init_kwargs.update(kwargs or {})
    if mapping:
        init_kwargs["mapping_kwargs"] = {**init_kwargs.get("mapping_kwargs", {}), **mapping}
    path = tmp_path / f"edited_{name}.safetensors"
    save_file({**original, **(tensors or {})}, str(path), metadata={**metadata, "init_kwargs": json.dumps(init_kwargs)})
    return path


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.uint8, torch.bool])
def test_non_float_weights_are_refused(tmp_path, native, dtype):
    weight = native("sg3r_64")[1]["mapping.fc0.weight"]
    path = edited(tmp_path, native, "sg3r_64", tensors={"mapping.fc0.weight": weight.to(dtype)})
    name = str(dtype).removeprefix("torch.")
    with pytest.raises(NetworkFileError, match=f"mapping.fc0.weight has dtype {name}, expected a floating-point tensor"):
        load_generator(path)
    assert path.name in one_error_line(runner.invoke(app, ["info", str(path)]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_weights_still_load_as_float32(tmp_path, native, dtype):
    weight = native("sg3r_64")[1]["mapping.fc0.weight"].to(dtype)
    G = load_generator(edited(tmp_path, native, "sg3r_64", tensors={"mapping.fc0.weight": weight}))
    assert G.mapping.fc0.weight.dtype == torch.float32
    assert torch.equal(G.mapping.fc0.weight, weight.to(torch.float32))


# Network configs --------------------------------------------------------------------------------------


def test_huge_resolution_is_refused_by_name(tmp_path, native):
    """1048576 px used to reach a division by zero (no channels left) and a traceback."""
    path = edited(tmp_path, native, "sg2_64", kwargs={"img_resolution": 1048576})
    with pytest.raises(UnsupportedNetworkError, match=rf"{path.name}: unsupported network options \(img_resolution "
                                                      r"must be a whole number from 4 to 8192, got 1048576\)"):
        load_generator(path)
    assert "unsupported network options" in one_error_line(runner.invoke(app, ["info", str(path)]))


def test_architecture_errors_name_the_file(tmp_path, native):
    path = edited(tmp_path, native, "sg2_64", kwargs={"img_resolution": 48})
    line = one_error_line(runner.invoke(app, ["info", str(path)]))
    assert path.name in line and "StyleGAN2 resolution must be a power of two >= 4, got 48" in line


# Values just past each limit: without the checks these build small networks and fail later, not in memory.
@pytest.mark.parametrize(("name", "kwargs", "mapping", "match"), [
    ("sg2_64", {"channel_base": 16}, None, "channel_base 16 with channel_max 64 leaves no channels at 64 px"),
    ("sg3r_64", {"channel_base": 16}, None, "channel_base 16 with channel_max 64 leaves no channels"),
    ("sg2_64", {"channel_max": 8193}, None, r"channel_max must be a whole number from 1 to 8192, got 8193"),
    ("sg2_64", {"z_dim": -1}, None, "z_dim must be a whole number"),
    ("sg2_64", {"w_dim": 2.5}, None, "w_dim must be a whole number"),
    ("sg2_64", {"img_channels": "3"}, None, "img_channels must be a whole number"),
    ("sg2_64", {"z_dim": 0, "c_dim": 0}, None, "the mapping network has no input"),
    ("sg2_64", {"conv_clamp": "x"}, None, "conv_clamp must be a finite number > 0, got 'x'"),
    ("sg2_64", {"resample_filter": [1] * 1000}, None, "resample_filter must have 1 to 64 taps"),
    ("sg2_64", {"mapping_kwargs": [8]}, None, "mapping_kwargs must be a mapping"),
    ("sg2_64", None, {"num_layers": 65}, r"mapping_kwargs.num_layers must be a whole number from 1 to 64"),
    ("sg2_64", None, {"lr_multiplier": 0}, r"mapping_kwargs.lr_multiplier must be a finite number > 0"),
    ("sg3r_64", {"num_layers": 2, "num_critical": 2}, None, "num_critical must be from 0 to num_layers - 1"),
    ("sg3r_64", {"margin_size": 1025}, None, "margin_size must be a whole number from 0 to 1024"),
    ("sg3r_64", {"first_stopband": float("nan")}, None, "first_stopband must be a finite number > 0"),
    ("sg3r_64", {"last_stopband_rel": 0}, None, "last_stopband_rel must be a finite number > 0"),
    ("sg3r_64", {"first_stopband": 1e30}, None, r"unsupported network options \(invalid value"),  # numpy, caught
    ("sg3r_64", {"conv_kernel": -3}, None, "conv_kernel must be a whole number"),
])
def test_crafted_configs_are_one_line_errors(tmp_path, native, name, kwargs, mapping, match):
    path = edited(tmp_path, native, name, kwargs=kwargs, mapping=mapping)
    with pytest.raises(UnsupportedNetworkError, match=match) as caught:
        load_generator(path)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)


def test_config_is_checked_against_the_weights_before_memory_is_taken(tmp_path, native):
    """A small file whose config asks for a 17 GB mapping network (64 layers of 8192 x 8192, inside the
    limits) fails on its missing weights in a process that cannot map 4 GB: nothing was built for real."""
    path = edited(tmp_path, native, "sg2_64", kwargs={"z_dim": 8192, "w_dim": 8192}, mapping={"num_layers": 64})
    code = ("import resource, sys\n"
            f"resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE}, {ADDRESS_SPACE}))\n"
            "from sg3rt import load_generator\n"
            "from sg3rt.errors import NetworkFileError\n"
            "try:\n"
            "    load_generator(sys.argv[1])\n"
            "except NetworkFileError as e:\n"
            "    print(e)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "weights do not match the config (missing ['mapping.fc10.bias'" in done.stdout


# -- library calls: one-line InputErrors, not Python's own ---------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    ({"truncation_psi": "a"}, "truncation psi must be a finite number"),
    ({"truncation_psi": float("nan")}, "truncation psi must be a finite number"),
    ({"truncation_psi": 1e39}, "truncation psi must be between -100 and 100, got 1e"),  # once: fp32 overflow
    ({"truncation_cutoff": 2.5}, "truncation cutoff must be an integer"),
    ({"c": np.ones((1, 3), np.float32)}, "this network is unconditional"),
])
def test_mapping_arguments_are_checked(kwargs, match):
    """Once: ValueError / silently ignored (a label for an unconditional network)."""
    with sg3rt.open_generator(reference_file("sg3r_64.pkl"), backend="torch") as G:
        z = np.zeros((1, G.z_dim), np.float32)
        with pytest.raises(sg3rt.InputError, match=match):
            G.mapping(z, **kwargs)
        assert G.mapping(z, c=np.zeros((1, 0), np.float32), truncation_psi=np.float32(0.7)).shape == (1, G.num_ws, G.w_dim)


@pytest.mark.parametrize("call", [
    lambda: sg3rt.input_transform("a", (0, 0)),
    lambda: sg3rt.input_transform(30, (0.1,)),
    lambda: sg3rt.input_transform([[1.0]], (0, 0)),
], ids=["angle-text", "shift-one-value", "angle-2d"])
def test_input_transform_arguments_are_checked(call):
    with pytest.raises(sg3rt.InputError, match="input_transform takes an angle in degrees"):
        call()


@pytest.mark.parametrize("args, kwargs, match", [
    ((5,), {}, "open_generator takes a network file or export folder path"),
    ((reference_file("sg3r_64.pkl"),), {"backend": "onnxruntime", "threads": "x"}, "threads must be a positive integer"),
    ((reference_file("sg3r_64.pkl"),), {"backend": "onnxruntime", "threads": 0}, "threads must be a positive integer"),
])
def test_open_generator_arguments_are_checked(args, kwargs, match):
    with pytest.raises(sg3rt.InputError, match=match):
        sg3rt.open_generator(*args, **kwargs)
