"""Opening an export checks it: graphs changed after export, hand-edited model.json, the export cache,
and the StyleGAN2 noise an export holds (its runtime's default)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from refdata import PARITY_TOL, reference_file, reference_io
from typer.testing import CliRunner

from sg3rt import InputError, NetworkFileError
from sg3rt.cli import app
from sg3rt.export import cached_export, read_model_json
from sg3rt.export import exported as exported_module
from sg3rt.export import tensorrt_build
from sg3rt.runtime import open_generator


def copy_export(src, dst):
    """A private copy of a session-wide export, free to damage."""
    shutil.copytree(src, dst)
    return dst


def edit_model_json(export_dir, edit) -> None:
    path = export_dir / "model.json"
    model = json.loads(path.read_text())
    model = edit(model)
    path.write_text(json.dumps(model))


def set_field(key, value, top_level=True):
    """An edit of one contract field (and its top-level copy, as a careful hand would edit both)."""
    def edit(model):
        model["contract"][key] = value
        if top_level and key in model:
            model[key] = value
        return model
    return edit


def assert_cli_refuses(export_dir, tmp_path, match: str) -> None:
    result = CliRunner().invoke(app, ["image", "-n", str(export_dir), "--seeds", "0", "-o", str(tmp_path / "img") + "/"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], result.output
    assert not (tmp_path / "img" / "seed0000.png").exists()


# ------------------------------------------------------------------------------------------------
# Graph files changed after export (the sha256 in model.json).


def test_a_graph_copied_from_another_export_is_refused(exported, tmp_path):
    out = copy_export(exported("sg3r_64"), tmp_path / "a")
    shutil.copy(exported("sg2_64") / "synthesis.onnx", out / "synthesis.onnx")
    expected = f"{out / 'synthesis.onnx'} does not match its model.json (changed after export); export again"
    with pytest.raises(NetworkFileError) as info:
        read_model_json(out)
    assert str(info.value) == expected
    with pytest.raises(NetworkFileError, match="changed after export"):
        open_generator(out, backend="onnxruntime", device="cpu")
    assert_cli_refuses(out, tmp_path, "changed after export")


def test_graph_hashes_are_remembered_until_the_file_changes(exported, tmp_path, monkeypatch):
    """Opening an export twice (the cache, then the runtime) hashes each graph once; a changed file again."""
    out = copy_export(exported("sg2_64"), tmp_path / "e")
    hashed = []
    real = exported_module.file_sha256
    monkeypatch.setattr(exported_module, "file_sha256", lambda path: hashed.append(path.name) or real(path))
    exported_module._sha256_of.cache_clear()
    read_model_json(out)
    read_model_json(out)
    assert sorted(hashed) == ["mapping.onnx", "synthesis.onnx"]
    data = (out / "synthesis.onnx").read_bytes()
    (out / "synthesis.onnx").write_bytes(data[:-1])
    with pytest.raises(NetworkFileError, match="changed after export"):
        read_model_json(out)
    assert sorted(hashed) == ["mapping.onnx", "synthesis.onnx", "synthesis.onnx"]


def test_a_damaged_cache_entry_is_made_again(tmp_path, monkeypatch):
    """A truncated graph or a lost model.json in the export cache is rebuilt, not an error on every open."""
    monkeypatch.setenv("SG3RT_CACHE_DIR", str(tmp_path / "cache"))
    network, io = reference_file("sg2_64.pkl"), reference_io("sg2_64")
    out = cached_export(network, target="onnxruntime-cpu")
    good = (out / "synthesis.onnx").read_bytes()
    (out / "synthesis.onnx").write_bytes(good[:10000])
    with open_generator(network, backend="onnxruntime", device="cpu") as rt:
        assert rt.export_dir == out
        assert float((rt.synthesis(io["ws_psi0.7"]) - io["img"]).abs().max()) <= PARITY_TOL
    assert (out / "synthesis.onnx").read_bytes() == good
    (out / "model.json").unlink()
    assert cached_export(network, target="onnxruntime-cpu") == out
    assert read_model_json(out).graphs["synthesis"].path.read_bytes() == good


def test_a_graph_changed_after_opening_never_reaches_the_engine_cache(exported, tmp_path, monkeypatch):
    """Engines are keyed by the hash model.json records: the graph built from must still be that graph."""
    from test_tensorrt_graph import fake_trt

    out = copy_export(exported("sg2_64"), tmp_path / "e")
    model = read_model_json(out)
    shutil.copy(exported("sg3r_64") / "synthesis.onnx", out / "synthesis.onnx")
    monkeypatch.setattr(tensorrt_build, "import_tensorrt", lambda: fake_trt(10))
    monkeypatch.setattr(tensorrt_build, "require_cuda_device", lambda device=None: "fake GPU")
    with pytest.raises(NetworkFileError, match="changed after export"):
        tensorrt_build.load_or_build_engines(model, "fp32", cache_dir=tmp_path / "engines")
    assert not list((tmp_path / "engines").glob("synthesis-*"))


# ------------------------------------------------------------------------------------------------
# A hand-edited model.json: its fields, and its contract against the graphs' own.


BROKEN = [  # (export, edit, what the one-line error says)
    ("sg3r_64", set_field("z_dim", -1), "broken model.json (z_dim must be an integer >= 1, got -1)"),
    ("sg3r_64", set_field("z_dim", "64"), "broken model.json (z_dim must be an integer >= 1"),
    ("sg3r_64", lambda m: [1], "broken model.json (a JSON list, not an object)"),
    ("sg3r_64", set_field("kind", "bogus"), "broken model.json (unknown network kind 'bogus'"),
    ("sg3r_64", set_field("frames", "yes"), "broken model.json (frames must be true or false"),
    ("sg3r_64", set_field("z_dim", 7, top_level=False), "broken model.json (z_dim is 64 at the top level, 7 in the contract)"),
    ("sg3r_64", lambda m: {**m, "w_avg": [float("nan")] + m["w_avg"][1:]}, "broken model.json (w_avg holds NaN"),
    ("sg3r_64", lambda m: {**m, "graphs": {**m["graphs"], "synthesis": {**m["graphs"]["synthesis"],
                                                                         "file": "../b/synthesis.onnx"}}},
     "broken model.json (graphs.synthesis.file must be a file name in the export directory"),
    ("sg3r_64", lambda m: {**m, "contract": {**m["contract"], "extra": 1}}, "broken model.json (unknown contract field"),
    ("sg3r_64", lambda m: {k: v for k, v in m.items() if k != "w_avg"}, "broken model.json (no 'w_avg')"),
]

MISMATCHED = [  # consistent within model.json, but not what the graphs are
    ("sg3r_64", set_field("c_dim", 10), "does not match mapping.onnx (inputs ['z', 'c'] in model.json, ['z'] in the graph)"),
    ("sg3r_64", set_field("frames", True), "does not match synthesis.onnx (outputs ['img', 'frames'] in model.json"),
    ("sg3r_64", set_field("kind", "stylegan2"), "does not match synthesis.onnx (inputs ['ws'] in model.json, ['ws', 'transform']"),
    ("sg2_64", set_field("kind", "stylegan3-r"), "does not match synthesis.onnx (inputs ['ws', 'transform'] in model.json"),
    ("sg3r_64", lambda m: set_field("img_resolution", 128)({**m, "width": 128, "height": 128}),
     "does not match synthesis.onnx (img has shape ['batch', 3, 128, 128] in model.json, ['batch', 3, 64, 64] in the graph)"),
    ("sg3r_64", lambda m: set_field("num_ws", 15)(m), "does not match mapping.onnx (ws has shape ['batch', 15, 64]"),
    ("sg3r_64", set_field("precision", "fp16"), "does not match synthesis.onnx (precision is 'fp16' in model.json, 'fp32' in the graph)"),
    ("sg3r_64", set_field("kind", "stylegan3-t"), "(kind is 'stylegan3-t' in model.json, 'stylegan3-r' in the graph)"),
    ("sg2_64", set_field("noise_mode", "none"), "(noise_mode is 'none' in model.json, 'const' in the graph)"),
]


@pytest.mark.parametrize("name, edit, match", BROKEN + MISMATCHED)
def test_a_hand_edited_model_json_is_refused_in_one_line(name, edit, match, exported, tmp_path):
    out = copy_export(exported(name), tmp_path / "e")
    edit_model_json(out, edit)
    with pytest.raises(NetworkFileError) as info:
        open_generator(out, backend="onnxruntime", device="cpu")
    message = str(info.value)
    assert message.startswith(f"{out / 'model.json'}") and match in message and "\n" not in message, message


def test_a_hand_edited_model_json_fails_in_the_cli_with_one_line(exported, tmp_path):
    out = copy_export(exported("sg3r_64"), tmp_path / "e")
    edit_model_json(out, set_field("frames", True))
    assert_cli_refuses(out, tmp_path, "does not match synthesis.onnx")


# ------------------------------------------------------------------------------------------------
# StyleGAN2 noise: what the export holds is the default.


def test_an_export_without_noise_runs_by_default(exported, tmp_path):
    out, io = exported("sg2_64", noise_mode="none"), reference_io("sg2_64")
    with open_generator(out, backend="onnxruntime", device="cpu") as rt:
        assert float((rt.synthesis(io["ws_psi0.7"]) - io["img_noise_none"]).abs().max()) <= PARITY_TOL
        assert float((rt.synthesis(io["ws_psi0.7"], noise_mode="none") - io["img_noise_none"]).abs().max()) <= PARITY_TOL
        frames = rt.frames(io["ws_psi0.7"].numpy())
        assert isinstance(frames, np.ndarray) and frames.shape == (io["img"].shape[0], 64, 64, 3)
        with pytest.raises(InputError, match=r"noise_mode='none' baked in; re-export with `sg3rt export --noise const`"):
            rt.synthesis(io["ws_psi0.7"], noise_mode="const")
        with pytest.raises(InputError) as info:
            rt.frames(io["ws_psi0.7"], noise_mode="random")
        assert "--noise random" not in str(info.value) and "torch backend" in str(info.value)
    result = CliRunner().invoke(app, ["image", "-n", str(out), "--seeds", "0", "-o", str(tmp_path / "img") + "/"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "img" / "seed0000.png").is_file()


def test_a_network_file_keeps_const_noise_by_default(load_reference):
    io = reference_io("sg2_64")
    with open_generator(load_reference("sg2_64"), backend="torch", device="cpu") as rt:
        assert float((rt.synthesis(io["ws_psi0.7"]) - io["img"]).abs().max()) <= PARITY_TOL


# ------------------------------------------------------------------------------------------------
# Output places checked before the work (QA writers item 7): a folder or a file in the way failed only after
# the network was read and the work done (minutes on a real network). The library checks what it is given
# before the work (export_onnx); convert, directions, sticking and image check in the CLI before loading.


@pytest.fixture
def no_loading(monkeypatch):
    """Loading a network (file or runtime) fails loudly: a refusal must come before it."""
    import sg3rt
    import sg3rt.networks

    def loaded(*args, **kwargs):
        raise AssertionError("the network was loaded before the output place was checked")

    monkeypatch.setattr(sg3rt.networks, "load_generator", loaded)
    monkeypatch.setattr(sg3rt, "open_generator", loaded)


NET = str(reference_file("sg3r_64.pkl"))


@pytest.mark.parametrize("args, taken, message", [
    (["convert", NET, "{d}/x.safetensors"], "x.safetensors/", "{d}/x.safetensors is a folder: give a file name"),
    (["convert", NET, "{d}/afile/x.safetensors"], "afile",
     "{d}/afile/x.safetensors: cannot write there ({d}/afile is a file, not a folder)"),
    (["directions", NET, "-o", "{d}/x.npz"], "x.npz/", "{d}/x.npz is a folder: give a file name"),
    (["sticking", NET, "-o", "{d}/x.png"], "x.png/", "{d}/x.png is a folder: give a file name"),
    (["image", "-n", NET, "--seeds", "0", "-o", "{d}/x.png"], "x.png/", "{d}/x.png is a folder: give a file name"),
    (["image", "-n", NET, "--seeds", "0-2", "-o", "{d}/x.png"], "x-seed0002.png/",
     "{d}/x-seed0002.png is a folder: give a file name"),
    (["export", NET, "-o", "{d}/afile"], "afile", "{d}/afile is a file, not a folder: give a new or empty folder"),
    (["export", NET, "-o", "{d}/proj"], "proj/train.py",
     "{d}/proj holds files that are not an sg3rt export (train.py): give a new or empty folder"),
], ids=["convert-folder", "convert-file-above", "directions", "sticking", "image", "image-many", "export-file",
        "export-foreign"])
def test_output_places_are_checked_before_the_network_loads(tmp_path, no_loading, args, taken, message):
    if taken.endswith("/"):
        (tmp_path / taken).mkdir()
    else:
        (tmp_path / taken).parent.mkdir(exist_ok=True)
        (tmp_path / taken).write_text("x")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(app, [a.replace("{d}", str(tmp_path)) for a in args])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == "error: " + message.replace("{d}", str(tmp_path))
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing made, nothing removed
