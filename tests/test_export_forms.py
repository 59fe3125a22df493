"""Export forms per target (issue 13): the ONNX Runtime CPU forms (banded MatMul + polyphase rows, merged into
the down-filters or not, channels padded to 16) compute what the torch network computes, on every reference
network, in torch and in ORT."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from refdata import PARITY_TOL, REFERENCES, reference_file, reference_io
from typer.testing import CliRunner

from sg3rt.cli import app
from sg3rt.export import OnnxContract
from sg3rt.export.onnx_export import TARGET_FIR_FORMS
from sg3rt.networks import fir
from sg3rt.networks.forms import FIR_FORMS, fir_form
from sg3rt.networks.layers import LRELU_SLOPE, FirFilter, lrelu_clamp
from sg3rt.vocab import EXPORT_TARGETS

FAST_REFERENCES = [n for n in REFERENCES if n != "sg3r_256"]
FORM_TOL = 1e-5  # polyphase form vs conv form in torch, images in about [-1, 1] (float32 summation order)


@pytest.mark.parametrize("taps, up, padding, separable, size", [
    (12, 2, (11, 10, 11, 10), True, (20, 20)),  # StyleGAN3 x2 layer
    (24, 4, (13, 12, 13, 12), True, (18, 18)),  # StyleGAN3 x4 layer
    (4, 2, (2, 1, 2, 1), False, (9, 9)),  # StyleGAN2 2-D filter (split by SVD)
    (12, 2, (3, -2, 5, 1), True, (20, 17)),  # a crop at one end, unequal sides
    (12, 2, (-3, 2, 5, 1), True, (20, 33)),  # a crop at the start, a partial last tile
])
@pytest.mark.parametrize("dense_max_w", [128, 4])  # one dense banded matrix, or tiles of 8 columns
def test_polyphase_upsampling_matches_conv_form(taps, up, padding, separable, size, dense_max_w, monkeypatch):
    monkeypatch.setattr(fir, "MATMUL_DENSE_MAX_W", dense_max_w)
    monkeypatch.setattr(fir, "MATMUL_TILE_IN", 8)
    gen = torch.Generator().manual_seed(taps + up)
    f = torch.randn([taps] if separable else [taps, taps], generator=gen)
    conv = FirFilter(taps, separable, 5, up=up, padding=padding, gain=up**2)
    conv.impl = "conv"
    x = torch.randn([2, 5, *size], generator=gen)
    ref = conv(x, f)
    g = (f.double() * conv.gain ** (f.ndim / 2)).flip(list(range(f.ndim)))  # correlation taps
    out = fir.upsample_matmul_polyphase(x, g, up, padding, 5)
    assert out.shape == ref.shape
    assert float((out - ref).abs().max()) <= 1e-5 * float(ref.abs().max())


@pytest.mark.parametrize("taps, up, down_taps, radial, padding, size", [
    (12, 2, 12, True, (11, 10, 11, 10), (20, 20)),  # StyleGAN3-R x2 layer, radial down-filter
    (24, 4, 12, True, (-2, -5, -2, -5), (18, 18)),  # x4 then /2: two output phases interleaved
    (12, 2, 12, False, (-9, -10, -9, -10), (24, 24)),  # critically sampled layer: separable, cropped
    (24, 4, 12, False, (13, 12, 3, -2), (17, 21)),  # unequal sides and sizes
    (12, 2, 8, True, (3, -2, 5, 1), (20, 33)),  # a crop at one end, a partial last tile
])
@pytest.mark.parametrize("impl, dense_max_w", [
    ("upsample_act_downsample", 128),  # rows merged, one dense banded matrix
    ("upsample_act_downsample", 4),  # rows merged, tiles of 8 columns
    ("upsample_act_downsample_phases", 128),  # rows and columns in phases
    ("filtered_activation_ort_cpu", 4),  # the per-layer choice
])
def test_merged_filtered_activation_matches_conv_form(taps, up, down_taps, radial, padding, size, impl, dense_max_w,
                                                      monkeypatch):
    """The ORT CPU forms of a filtered activation = conv-form upsample, leaky ReLU + clamp, conv-form downsample."""
    monkeypatch.setattr(fir, "MATMUL_DENSE_MAX_W", dense_max_w)
    monkeypatch.setattr(fir, "MATMUL_TILE_IN", 8)
    gen = torch.Generator().manual_seed(taps + up + down_taps)
    f_up = torch.randn([taps], generator=gen)
    f_down = torch.randn([down_taps, down_taps] if radial else [down_taps], generator=gen)
    upsample = FirFilter(taps, True, 5, up=up, padding=padding, gain=up**2)
    downsample = FirFilter(down_taps, not radial, 5, down=2)
    upsample.impl = downsample.impl = "conv"
    clamp = 1.5  # reached by some samples
    x = torch.randn([2, 5, *size], generator=gen)
    ref = downsample(lrelu_clamp(upsample(x, f_up), 1.0, LRELU_SLOPE, clamp), f_down)
    out = getattr(fir, impl)(x, upsample.correlation_taps(f_up), up, padding, downsample.correlation_taps(f_down), 2,
                             LRELU_SLOPE, clamp, 5)
    assert out.shape == ref.shape
    assert float((out - ref).abs().max()) <= 1e-5 * float(ref.abs().max())


@pytest.mark.parametrize("name", REFERENCES)
def test_forms_match_torch_network(name, load_reference):
    """Every FIR form gives the conv form's images (torch), and fir_form restores the filters after."""
    G = load_reference(name)
    io = reference_io(name)
    ws = io["ws_psi0.7"][:2]
    with torch.no_grad():
        ref = G.synthesis(ws)
        settings = [(m.impl, m.channel_multiple) for m in G.modules() if isinstance(m, FirFilter)]
        for form in FIR_FORMS:
            with fir_form(G, form):
                if form in ("polyphase", "merged") and G.kind != "stylegan2":  # every StyleGAN3 filter runs on 16k channels
                    assert all(m.conv_channels % 16 == 0 for m in G.synthesis.modules() if isinstance(m, FirFilter))
                out = G.synthesis(ws)
            assert float((out - ref).abs().max()) <= FORM_TOL, form
    assert [(m.impl, m.channel_multiple) for m in G.modules() if isinstance(m, FirFilter)] == settings


@pytest.fixture
def ort_cpu_export(exported):
    """name -> the onnxruntime-cpu export of a reference network (conftest's session cache)."""
    return lambda name, **options: exported(name, target="onnxruntime-cpu", **options)


def run_synthesis(out_dir, ws, transform=None):
    import onnxruntime as ort

    session = ort.InferenceSession(str(out_dir / "synthesis.onnx"), providers=["CPUExecutionProvider"])
    feed = {"ws": ws.numpy()}
    if transform is not None:
        feed["transform"] = transform.numpy()
    return torch.from_numpy(session.run(["img"], feed)[0])


def check_ort_cpu_graph(out_dir, kind):
    model = onnx.load(str(out_dir / "synthesis.onnx"))
    dims = {i.name: list(i.dims) for i in model.graph.initializer}  # constant tensors: initializers, Constants
    dims.update({n.output[0]: list(n.attribute[0].t.dims) for n in model.graph.node if n.op_type == "Constant"})
    depthwise = {"Conv": [], "ConvTranspose": []}
    for node in model.graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if node.op_type in depthwise and group > 1 and dims.get(node.input[1], [0, 0])[1] == 1:
            depthwise[node.op_type].append(group)
    # No depthwise ConvTranspose is left (StyleGAN2's modulated transposed conv is a grouped one, not depthwise).
    assert depthwise["Conv"] and not depthwise["ConvTranspose"]
    assert any(n.op_type == "MatMul" for n in model.graph.node)
    depthwise = depthwise["Conv"]
    if kind != "stylegan2":  # StyleGAN3 layers run their depthwise filters on channels padded to 16
        assert all(c % 16 == 0 for c in depthwise), depthwise


@pytest.mark.parametrize("name", FAST_REFERENCES)
def test_ort_cpu_export_matches_official_outputs(name, ort_cpu_export, load_reference):
    out, io = ort_cpu_export(name), reference_io(name)
    model = json.loads((out / "model.json").read_text())
    assert model["target"] == "onnxruntime-cpu" and model["fir_form"] == "merged"
    assert model["contract"]["target"] == "onnxruntime-cpu" and model["max_errors"]["img"] <= PARITY_TOL
    check_ort_cpu_graph(out, model["kind"])
    ws = io["ws_psi0.7"]
    if model["kind"] == "stylegan2":
        assert float((run_synthesis(out, ws) - io["img"]).abs().max()) <= PARITY_TOL
        return
    transforms = torch.stack([torch.eye(3), io["input_transform"], torch.eye(3)])[: ws.shape[0]]
    img = run_synthesis(out, ws, transforms)
    assert float((img[0] - io["img"][0]).abs().max()) <= PARITY_TOL
    assert float((img[1] - io["img_transformed"][1]).abs().max()) <= PARITY_TOL


@pytest.mark.slow
def test_ort_cpu_export_sg3r_256(ort_cpu_export):
    out, io = ort_cpu_export("sg3r_256"), reference_io("sg3r_256")
    check_ort_cpu_graph(out, "stylegan3-r")
    img = run_synthesis(out, io["ws_psi0.7"][:2], torch.stack([torch.eye(3), io["input_transform"]]))
    assert float((img[0] - io["img"][0]).abs().max()) <= PARITY_TOL
    assert float((img[1] - io["img_transformed"][1]).abs().max()) <= PARITY_TOL


@pytest.mark.slow
def test_ort_cpu_export_fp16(ort_cpu_export, load_reference):
    """fp16 in the new form: close to the fp32 network, not garbled (the export's own verification passed)."""
    out, io, G = ort_cpu_export("sg3r_64", precision="fp16"), reference_io("sg3r_64"), load_reference("sg3r_64")
    ws = io["ws_psi0.7"][:1]
    with torch.no_grad():
        ref = G.synthesis(ws)
    err = float((run_synthesis(out, ws, torch.eye(3)[None]) - ref).abs().max())
    assert 0 < err <= 5e-2


def test_targets_and_model_json_defaults():
    assert set(TARGET_FIR_FORMS) == set(EXPORT_TARGETS) and set(TARGET_FIR_FORMS.values()) <= set(FIR_FORMS)
    old = dict(kind="stylegan3-r", z_dim=4, c_dim=0, w_dim=4, num_ws=2, img_resolution=16, img_channels=3)
    assert OnnxContract.from_json(old).target == "portable"  # exports written before targets existed
    with pytest.raises(Exception, match="export target"):
        OnnxContract(**old, target="coreml")


def test_cli_export_target(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(app, ["export", str(reference_file("sg3r_64.pkl")), "-o", str(tmp_path / "x"),
                              "--target", "coreml"])
    assert bad.exit_code == 2 and not (tmp_path / "x").exists()
    ok = runner.invoke(app, ["export", str(reference_file("sg2_64.pkl")), "-o", str(tmp_path / "e"),
                             "--target", "onnxruntime-cpu"])
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "e" / "model.json").read_text())["target"] == "onnxruntime-cpu"


def test_cpu_batches_run_their_images_side_by_side(ort_cpu_export, load_reference):
    """On a multi-core CPU a batch runs its images in parallel, one single-threaded call each: the same
    pixels as one call per image, and the official outputs within the export's tolerance."""
    from sg3rt.runtime import open_generator

    rng = np.random.RandomState(3)
    with open_generator(ort_cpu_export("sg3r_64"), backend="onnxruntime", device="cpu", threads=2) as rt:
        ws = rt.mapping(rng.randn(3, rt.z_dim))
        assert rt._parallel is None  # single images never make the second session
        one_by_one = np.concatenate([rt.frames(ws[i : i + 1]) for i in range(3)])
        assert rt._parallel is None
        batch = rt.frames(ws)
        assert rt._parallel is not None and rt.workers == 2
        assert np.array_equal(batch, one_by_one)
        torch_img = load_reference("sg3r_64").synthesis(torch.from_numpy(np.asarray(ws)).float())
        assert np.abs(rt.synthesis(ws).numpy() - torch_img.detach().numpy()).max() < PARITY_TOL
    with open_generator(ort_cpu_export("sg3r_64"), backend="onnxruntime", device="cpu", threads=1) as rt:
        rt.frames(rt.mapping(rng.randn(2, rt.z_dim)))
        assert rt._parallel is None  # one thread: one call after the other, as before
