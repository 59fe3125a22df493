"""ONNX export: graphs match the official reference outputs, pass the checks, and fail loudly."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from refdata import PARITY_TOL, REFERENCES, STYLEGAN3_REFERENCES, labels, reference_file, reference_io
from typer.testing import CliRunner

from sg3rt import InputError, input_transform
from sg3rt.cli import app
from sg3rt.export import ExportError, ExportVerificationError, export_onnx
from sg3rt.export.contract import FP16_TOL
from sg3rt.export.onnx_export import file_sha256
from sg3rt.runtime import to_uint8_frames

FAST_REFERENCES = [n for n in REFERENCES if n != "sg3r_256"]  # sg3r_256 is exported once, marked slow
OTHER_TRANSFORM = (45.0, (0.2, 0.1))  # rotate, translate of the third sample in the per-sample test


def session(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run_mapping(out_dir, z, c):
    feed = {"z": z.numpy()}
    if c is not None:
        feed["c"] = c.numpy()
    return torch.from_numpy(session(out_dir / "mapping.onnx").run(["ws"], feed)[0])


def run_synthesis(out_dir, ws, transform=None, outputs=("img",)):
    feed = {"ws": ws.numpy()}
    if transform is not None:
        feed["transform"] = transform.numpy()
    return [torch.from_numpy(a) for a in session(out_dir / "synthesis.onnx").run(list(outputs), feed)]


def identity(batch):
    return torch.eye(3).expand(batch, 3, 3).contiguous()


def max_err(a, b):
    return float((a - b).abs().max())


def test_export_matches_official_outputs_batch_1_and_3(exported):
    for name in FAST_REFERENCES:
        out, io = exported(name), reference_io(name)
        sg3 = name in STYLEGAN3_REFERENCES
        c = labels(io)
        for b in (1, 3):
            ws = run_mapping(out, io["z"][:b], None if c is None else c[:b])
            assert ws.shape == (b, *io["ws_psi1.0"].shape[1:])
            assert max_err(ws, io["ws_psi1.0"][:b]) <= PARITY_TOL, name
            (img,) = run_synthesis(out, io["ws_psi0.7"][:b], identity(b) if sg3 else None)
            assert img.dtype == torch.float32 and img.shape == (b, *io["img"].shape[1:])
            assert max_err(img, io["img"][:b]) <= PARITY_TOL, name


@pytest.mark.parametrize("name", [n for n in STYLEGAN3_REFERENCES if n in FAST_REFERENCES])
def test_per_sample_transforms(name, exported, load_reference):
    """Batch 3 on one graph: sample i gets transform i (identity, the official one, another one)."""
    out, io, G = exported(name), reference_io(name), load_reference(name)
    other = input_transform(*OTHER_TRANSFORM)
    transforms = torch.stack([torch.eye(3), io["input_transform"], other])
    ws = io["ws_psi0.7"][:3]
    (img,) = run_synthesis(out, ws, transforms)
    assert max_err(img[0], io["img"][0]) <= PARITY_TOL
    assert max_err(img[1], io["img_transformed"][1]) <= PARITY_TOL
    with torch.no_grad():
        ref = G.synthesis(ws[2:3], transforms=other)
    assert max_err(img[2:3], ref) <= PARITY_TOL
    assert max_err(img[1], img[0]) > 0.05  # the transform really moved the picture


@pytest.mark.slow
def test_sg3r_256_export(exported):
    out, io = exported("sg3r_256"), reference_io("sg3r_256")
    ws = io["ws_psi0.7"][:2]
    (img,) = run_synthesis(out, ws, torch.stack([torch.eye(3), io["input_transform"]]))
    assert max_err(img[0], io["img"][0]) <= PARITY_TOL
    assert max_err(img[1], io["img_transformed"][1]) <= PARITY_TOL


def test_stylegan2_noise_none(exported):
    out, io = exported("sg2_64", noise_mode="none"), reference_io("sg2_64")
    (img,) = run_synthesis(out, io["ws_psi0.7"])
    assert max_err(img, io["img_noise_none"]) <= PARITY_TOL
    assert max_err(img, io["img"]) > 1e-3  # const noise is really gone


def test_graph_interface_and_checks(exported):
    for name, m_inputs, s_inputs in (("sg3t_64_cond", ["z", "c"], ["ws", "transform"]),
                                     ("sg3r_64", ["z"], ["ws", "transform"]),
                                     ("sg2_64", ["z"], ["ws"])):
        out = exported(name)
        for graph, inputs, outputs in (("mapping", m_inputs, ["ws"]), ("synthesis", s_inputs, ["img"])):
            model = onnx.load(str(out / f"{graph}.onnx"))
            onnx.checker.check_model(model, full_check=True)
            assert [i.name for i in model.graph.input] == inputs
            assert [o.name for o in model.graph.output] == outputs
            for value in (*model.graph.input, *model.graph.output):
                assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
                assert value.type.tensor_type.shape.dim[0].dim_param == "batch"


def test_model_json(exported, load_reference):
    out, G = exported("sg3t_64_cond"), load_reference("sg3t_64_cond")
    model = json.loads((out / "model.json").read_text())
    assert (model["kind"], model["c_dim"], model["num_ws"], model["img_resolution"]) == ("stylegan3-t", 10, 16, 64)
    assert model["source"]["sha256"] == file_sha256(reference_file("sg3t_64_cond.pkl"))
    assert np.allclose(model["w_avg"], G.w_avg.numpy())
    assert model["precision"] == "fp32" and model["opset"] == 17
    assert model["graphs"]["synthesis"]["sha256"] == file_sha256(out / "synthesis.onnx")
    assert model["max_errors"]["img"] <= PARITY_TOL


@pytest.mark.slow  # tracing fp16 convolutions on a CPU takes seconds
def test_fp16_frames_export(exported, load_reference):
    """fp16 keeps float32 I/O, stays close to the fp32 network, and the uint8 frames output matches."""
    out, io, G = exported("sg3r_64", precision="fp16", frames=True), reference_io("sg3r_64"), load_reference("sg3r_64")
    model = onnx.load(str(out / "synthesis.onnx"))
    assert [o.name for o in model.graph.output] == ["img", "frames"]
    assert model.graph.output[1].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in model.graph.input)
    assert any(n.op_type == "Cast" for n in model.graph.node)  # fp16 inside
    transforms = torch.stack([torch.eye(3), io["input_transform"], torch.eye(3)])
    img, frames = run_synthesis(out, io["ws_psi0.7"], transforms, outputs=("img", "frames"))
    assert_untouched(G, "sg3r_64")  # exporting in fp16 left the caller's network as it was
    with torch.no_grad():
        ref = G.synthesis(io["ws_psi0.7"], transforms=transforms)
    err = max_err(img, ref)
    assert 0 < err <= FP16_TOL  # really fp16, and not garbled
    assert frames.dtype == torch.uint8 and frames.shape == (3, 64, 64, 3)
    assert (frames.int() - to_uint8_frames(img).int()).abs().max() <= 1


def assert_untouched(G, name: str) -> None:
    """G's weights, buffers and device equal a fresh load of the same file."""
    from sg3rt import load_generator

    fresh = load_generator(reference_file(f"{name}.pkl")).state_dict()
    state = G.state_dict()
    assert state.keys() == fresh.keys()
    for key, tensor in state.items():
        assert tensor.device.type == "cpu" and tensor.dtype == fresh[key].dtype and torch.equal(tensor, fresh[key]), key


def test_export_errors(tmp_path, load_reference):
    G = load_reference("sg2_64")
    with pytest.raises(InputError, match="precision"):
        export_onnx(G, tmp_path / "a", precision="int8")
    with pytest.raises(InputError, match="opset"):
        export_onnx(G, tmp_path / "a", opset=9)
    with pytest.raises(InputError, match="noise"):
        export_onnx(G, tmp_path / "a", noise_mode="random")
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"x")
    with pytest.raises(InputError, match="not an sg3rt export"):
        export_onnx(G, foreign, verify=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]  # no temp dirs left behind
    assert (foreign / "cat.jpg").read_bytes() == b"x"


def test_verification_failure_is_typed_and_atomic(tmp_path, load_reference, monkeypatch):
    import sg3rt.export.contract as contract

    monkeypatch.setattr(contract, "FP32_TOL", 0.0)  # nothing can pass a zero tolerance on images
    with pytest.raises(ExportVerificationError, match="differs from the torch network"):
        export_onnx(load_reference("sg2_64"), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_cli_export_replaces_previous_export(tmp_path, exported):
    out = tmp_path / "onnx"
    shutil.copytree(exported("sg2_64"), out)  # an earlier export (const noise)
    (out / "mapping.onnx").unlink()  # even a damaged one
    result = CliRunner().invoke(app, ["export", str(reference_file("sg2_64.pkl")), "-o", str(out), "--noise", "none"])
    assert result.exit_code == 0, result.output
    assert "verified with ONNX Runtime" in result.output and "max abs error" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["mapping.onnx", "model.json", "synthesis.onnx"]
    assert json.loads((out / "model.json").read_text())["contract"]["noise_mode"] == "none"


def test_cli_export_bad_network(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle")
    result = CliRunner().invoke(app, ["export", str(bad), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------------
# The output folder: an export replaces an earlier export whole, so anything else in it is refused first.


def tree(root):
    """{relative path: bytes} of every file under root (folders as None)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.fixture
def no_export_work(monkeypatch):
    """Call it once the test's exports are made: from then on the export's first step fails loudly (a refusal
    must come before it)."""
    from sg3rt.export import onnx_export

    def started(*args, **kwargs):
        raise AssertionError("the export started")

    return lambda: monkeypatch.setattr(onnx_export, "example_inputs", started)


def test_cli_export_keeps_a_folder_with_a_foreign_model_json(tmp_path, no_export_work):
    """A HuggingFace-style model.json is not an sg3rt export: the folder was renamed aside and deleted, exit 0."""
    proj = tmp_path / "proj"
    (proj / "data").mkdir(parents=True)
    (proj / "model.json").write_text('{"architectures": ["BertModel"]}')
    (proj / "train.py").write_text("important")
    (proj / "data" / "x.csv").write_text("1")
    before = tree(proj)
    no_export_work()
    result = CliRunner().invoke(app, ["export", str(reference_file("sg3r_64.pkl")), "-o", str(proj)])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (f"error: {proj} holds files that are not an sg3rt export (model.json, data/, "
                                     f"train.py): give a new or empty folder")
    assert tree(proj) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]  # no temp folders


@pytest.mark.parametrize("extra", ["NOTES.txt", "engines/a.plan", "model.json.bak", "mapping.onnx/"])
def test_export_keeps_files_kept_beside_an_earlier_export(tmp_path, exported, load_reference, no_export_work, extra):
    """Re-exporting into a real export deleted whatever else the user kept there (notes, engines)."""
    out = tmp_path / "onnx"
    shutil.copytree(exported("sg3r_64"), out)
    if extra.endswith("/"):  # a folder where a graph file goes
        (out / extra).unlink()
        (out / extra).mkdir()
    else:
        (out / extra).parent.mkdir(exist_ok=True)
        (out / extra).write_text("mine")
    before = tree(out)
    no_export_work()
    with pytest.raises(InputError, match=rf"holds files that are not an sg3rt export \({extra.split('/')[0]}/?\)"):
        export_onnx(load_reference("sg3r_64"), out)
    assert tree(out) == before


@pytest.mark.parametrize("model_json", ['{"format": "sg3rt-onnx"}', '{"format": "other", "format_version": 2}',
                                        '["sg3rt-onnx"]', "not json", '{"format": "sg3rt-onnx", "format_version": true}'])
def test_export_refuses_a_model_json_that_is_not_sg3rts(tmp_path, load_reference, no_export_work, model_json):
    out = tmp_path / "onnx"
    out.mkdir()
    (out / "model.json").write_text(model_json)
    no_export_work()
    with pytest.raises(InputError, match=r"not an sg3rt export \(model.json\)"):
        export_onnx(load_reference("sg2_64"), out)
    assert (out / "model.json").read_text() == model_json


def test_export_output_checked_before_the_work(tmp_path, load_reference, no_export_work):
    """-o FILE, a link to nothing, and a file where a folder goes: refused in one line before the export (was
    after it: minutes on a large network)."""
    G = load_reference("sg2_64")
    no_export_work()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputError, match="afile is a file, not a folder: give a new or empty folder"):
        export_onnx(G, tmp_path / "afile")
    with pytest.raises(InputError, match="dangling is a file, not a folder"):
        export_onnx(G, tmp_path / "dangling")
    with pytest.raises(InputError, match=r"cannot write there \(.*afile is a file, not a folder\)"):
        export_onnx(G, tmp_path / "afile" / "sub" / "onnx")
    assert (tmp_path / "afile").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "dangling"]


def test_export_into_an_empty_folder(tmp_path, load_reference):
    out = tmp_path / "onnx"
    out.mkdir()
    export_onnx(load_reference("sg2_64"), out, verify=False)
    assert sorted(p.name for p in out.iterdir()) == ["mapping.onnx", "model.json", "synthesis.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx"]
