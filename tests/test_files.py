"""Network files end to end: load_generator on pickles and .safetensors, convert, info, and bad input."""

from __future__ import annotations

import json
import pickle
import struct
import uuid
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from official_format import Persistent, module_meta
from refdata import PARITY_TOL, REFERENCES, reference_file, reference_io
from sg3rt import NetworkFileError, UnsafePickleError, UnsupportedNetworkError, load_generator, save_generator
from sg3rt.cli import app
from sg3rt.networks.default import default_generator

runner = CliRunner()


def state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# Native format ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REFERENCES)
def test_safetensors_round_trip_is_exact(load_reference, tmp_path, name):
    G = load_reference(name)
    path = save_generator(G, tmp_path / f"{name}.safetensors")
    G2 = load_generator(path)
    assert G2.kind == G.kind and G2.init_kwargs == G.init_kwargs
    assert state_equal(G, G2)
    io = reference_io(name)
    with torch.no_grad():
        assert (G2.synthesis(io["ws_psi0.7"]) - io["img"]).abs().max() <= PARITY_TOL


def test_safetensors_loading_needs_no_pickle(load_reference, tmp_path, monkeypatch):
    path = save_generator(load_reference("sg3r_64"), tmp_path / "n.safetensors")

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used while loading a .safetensors file")

    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    assert load_generator(path).kind == "stylegan3-r"


def test_default_network_is_deterministic():
    a, b = default_generator(), default_generator()
    assert a.kind == "stylegan3-r" and a.img_resolution == 128
    assert state_equal(a, b)
    z = torch.randn(2, a.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        img = a(z)
    assert 0.1 < img.std().item() < 1.2  # calibrated: contrast, ...
    assert (img.abs() > 1).float().mean().item() < 0.3  # ... and mostly not clipped


# Bad input -------------------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def safetensors_bytes(header: dict, payload: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda p: p / "missing.pkl", NetworkFileError, "no such file"),
        (lambda p: p, NetworkFileError, "is a directory"),
        (lambda p: write(p, "empty.pkl", b""), NetworkFileError, "empty"),
        (lambda p: write(p, "text.pkl", b"hello world\n"), NetworkFileError, "not a network pickle"),
        (lambda p: write(p, "cut.pkl", reference_file("sg3r_64.pkl").read_bytes()[:100000]), NetworkFileError, "cut.pkl"),
        (lambda p: write(p, "nog.pkl", pickle.dumps({"D": 1}, protocol=4)), NetworkFileError, "no generator"),
        (lambda p: write(p, "plain.safetensors", safetensors_bytes({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4)),
         NetworkFileError, "without sg3rt metadata"),
        (lambda p: write(p, "badmeta.safetensors", safetensors_bytes(
            {"__metadata__": {"format": "sg3rt", "version": "1", "kind": "stylegan9", "init_kwargs": "{}"}})),
         NetworkFileError, "kind 'stylegan9'"),
        (lambda p: write(p, "brokenjson.safetensors", safetensors_bytes(
            {"__metadata__": {"format": "sg3rt", "version": "1", "kind": "stylegan2", "init_kwargs": "{nope"}})),
         NetworkFileError, "broken sg3rt metadata"),
        (lambda p: write(p, "trunc.safetensors", safetensors_bytes({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 3)),
         NetworkFileError, "corrupt"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, make, error, match):
    with pytest.raises(error, match=match) as caught:
        load_generator(make(tmp_path))
    assert "\n" not in str(caught.value)


def test_foreign_global_is_refused_and_not_run(tmp_path):
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"

    class Exploit:
        def __reduce__(self):
            import os

            return os.system, (f"touch {marker}",)

    path = write(tmp_path, "evil.pkl", pickle.dumps({"G_ema": Exploit()}, protocol=4))
    with pytest.raises(UnsafePickleError, match="system"):
        load_generator(path)
    assert not marker.exists()
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 2 and "system" in result.output and not marker.exists()


def hand_made_generator(init_kwargs: dict, children: dict[str, str]) -> Persistent:
    """An official-format Generator record with the given child class names and no weights."""

    def node(class_name: str, prefix: str) -> Persistent:
        kids = {k[len(prefix):]: v for k, v in children.items() if k.startswith(prefix) and "." not in k[len(prefix):]}
        modules = {name: node(cls, f"{prefix}{name}.") for name, cls in kids.items()}
        return Persistent(module_meta(class_name, _parameters={}, _buffers={}, _modules=modules, _init_kwargs={}))

    top = node("Generator", "")
    top.meta["state"]["_init_kwargs"] = init_kwargs
    return top


SG2_KWARGS = {"z_dim": 8, "c_dim": 0, "w_dim": 8, "img_resolution": 8, "img_channels": 3, "channel_base": 64,
              "channel_max": 8}
SG2_CHILDREN = {"mapping": "MappingNetwork", "synthesis": "SynthesisNetwork", "synthesis.b4": "SynthesisBlock"}


@pytest.mark.parametrize(
    ("kwargs", "children", "match"),
    [
        ({**SG2_KWARGS, "architecture": "resnet"}, SG2_CHILDREN, "architecture 'resnet'"),
        (SG2_KWARGS, {**SG2_CHILDREN, "synthesis.b4.attn": "SelfAttention"}, "SelfAttention"),
        (SG2_KWARGS, {"mapping": "MappingNetwork", "synthesis": "SynthesisNetwork"}, "unsupported architecture"),
        ({**SG2_KWARGS, "mapping_kwargs": {"activation": "relu"}}, SG2_CHILDREN, "unsupported mapping"),
    ],
)
def test_unsupported_architectures(tmp_path, official_modules, kwargs, children, match):
    path = write(tmp_path, "odd.pkl", pickle.dumps({"G_ema": hand_made_generator(kwargs, children)}, protocol=4))
    with pytest.raises(UnsupportedNetworkError, match=match):
        load_generator(path)
    assert official_modules == []  # the stand-in for the official code was never called


def test_weights_that_do_not_fit_the_config(tmp_path, official_modules):
    path = write(tmp_path, "empty.pkl", pickle.dumps({"G_ema": hand_made_generator(SG2_KWARGS, SG2_CHILDREN)}, protocol=4))
    with pytest.raises(NetworkFileError, match="weights do not match the config"):
        load_generator(path)


# CLI: info and convert -------------------------------------------------------------------------------


def test_info_table_and_json():
    path = reference_file("sg3t_64_cond.pkl")
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output
    assert "stylegan3-t" in result.output and "L14_64_3" in result.output and "10" in result.output
    result = runner.invoke(app, ["info", str(path), "--json"])
    info = json.loads(result.output)
    assert (info["kind"], info["c_dim"], info["num_ws"], info["img_resolution"]) == ("stylegan3-t", 10, 16, 64)
    assert info["params"] == sum(p.numel() for p in load_generator(path).parameters())


def test_info_on_default_network_says_so():
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0 and "embedded default network" in result.output


def test_convert_cli_round_trip(tmp_path, load_reference):
    out = tmp_path / "sub" / "sg2.safetensors"
    result = runner.invoke(app, ["convert", str(reference_file("sg2_64.pkl")), str(out)])
    assert result.exit_code == 0, result.output
    assert state_equal(load_generator(out), load_reference("sg2_64"))
    assert [p.name for p in out.parent.iterdir()] == ["sg2.safetensors"]  # no temp file left


def test_convert_errors_leave_nothing(tmp_path):
    out = tmp_path / "x.safetensors"
    bad = write(tmp_path, "bad.pkl", b"\x80\x04junk")
    result = runner.invoke(app, ["convert", str(bad), str(out)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "bad.pkl" in result.output
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.pkl"]
    result = runner.invoke(app, ["convert", str(reference_file("sg2_64.pkl")), str(tmp_path / "x.pt")])
    assert result.exit_code == 2 and ".safetensors" in result.output
