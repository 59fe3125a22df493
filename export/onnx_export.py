"""torch Generator -> mapping.onnx + synthesis.onnx + model.json, checked and verified.

The TorchScript exporter (`dynamo=False`) traces our export-friendly networks into plain ONNX ops
with a dynamic batch axis. Every export is checked (`onnx.checker` full check, strict shape
inference against the contract) and verified: ONNX Runtime on CPU against the torch network at
batch 1 and 3 with per-sample transforms. The directory appears atomically (temp dir, then rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..version import __version__
from ..errors import InputError
from ..fileio import check_can_write, create_temp_dir, create_temp_file, make_parent, os_error
from ..networks import Generator, input_transform, on_device, to_uint8_frames
from ..networks.forms import fir_form
from ..vocab import DEFAULT_EXPORT_TARGET, one_hot, parse_size
from .contract import BATCH, EXPORT_FORMAT, EXPORT_FORMAT_VERSION, FRAMES_TOL, GRAPH_CONTRACT_KEY, GRAPHS, OnnxContract
from .errors import ExportError, ExportVerificationError
from .exported import MODEL_JSON, file_sha256, is_sg3rt_record

TRACE_BATCH = 2  # example batch for tracing: not 1, so no size-1 broadcast can be baked in
VERIFY_BATCHES = (1, 3)  # batches ONNX Runtime is checked at, on the one dynamic graph
VERIFY_SEED = 0  # random inputs of the verification step
MAX_ROTATE_DEG = 180.0  # range of the random rotations of the verification step
MAX_TRANSLATE = 0.3  # range of the random translations (image widths)
# Every file an export writes (and all that `export_onnx` may replace in an existing folder): torch's exporter
# writes one .onnx file per graph (external data only past protobuf's 2 GB, far beyond any StyleGAN, and
# _record_contract saves each graph whole), ONNX Runtime's verification writes nothing.
EXPORT_FILES = (MODEL_JSON, *(f"{name}.onnx" for name in GRAPHS))
EXPORT_DIR_SHOWN = 3  # foreign entries named when an output folder is refused
# The FIR form (networks/forms.py) written for each target. ONNX Runtime CPU: banded MatMul + polyphase
# rows merged into the down-filters and channels padded to 16 (sg3r_64 0.3x -> about 1x PyTorch, sg3r_256
# 0.65x with rows interleaved ("polyphase") -> see benchmarks/bench_backends.py and the README). The GPU
# targets keep the depthwise (transposed) convolutions that cuDNN and TensorRT run directly: the other
# forms are not measured on a GPU yet.
TARGET_FIR_FORMS = {"portable": "conv", "onnxruntime-cpu": "merged", "onnxruntime-cuda": "conv", "tensorrt": "conv"}


def generator_sha256(G: Generator) -> str:
    """A digest of a network's config and weights, for networks that have no file (the default)."""
    h = hashlib.sha256(json.dumps({"kind": G.kind, "init_kwargs": G.init_kwargs}, sort_keys=True).encode())
    for name, tensor in sorted(G.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------
# The modules that are traced: the exact inputs and outputs of the contract, nothing else.


class MappingGraph(nn.Module):
    """z [B, z_dim] (+ c [B, c_dim]) -> untruncated ws [B, num_ws, w_dim]."""

    def __init__(self, G: Generator):
        super().__init__()
        self.mapping = G.mapping

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.mapping(z, c)


class SynthesisGraph(nn.Module):
    """ws [B, num_ws, w_dim] (+ transform [B, 3, 3]) -> img [B, C, H, W] float32 (+ frames uint8 NHWC)."""

    def __init__(self, G: Generator, contract: OnnxContract):
        super().__init__()
        self.synthesis, self.is_stylegan3 = G.synthesis, G.is_stylegan3
        self.noise_mode, self.frames, self.precision = contract.noise_mode, contract.frames, contract.precision

    def forward(self, ws: torch.Tensor, transform: torch.Tensor | None = None):
        if self.is_stylegan3:
            img = self.synthesis(ws, transforms=transform, precision=self.precision)
        else:
            img = self.synthesis(ws, noise_mode=self.noise_mode, precision=self.precision)
        if not self.frames:
            return img
        return img, to_uint8_frames(img)


# ------------------------------------------------------------------------------------------------
# Inputs: realistic ws (from the mapping), one-hot labels, random per-sample transforms.


def example_inputs(G: Generator, contract: OnnxContract, batch: int, seed: int) -> dict[str, torch.Tensor]:
    """Inputs of both graphs at `batch`: z, c (if conditional), ws, transform (if StyleGAN3)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn([batch, contract.z_dim], generator=gen)
    inputs = {"z": z}
    c = None
    if contract.c_dim > 0:
        c = one_hot(torch.randint(contract.c_dim, [batch], generator=gen), contract.c_dim)
        inputs["c"] = c
    with torch.no_grad():
        inputs["ws"] = G.mapping(z, c, truncation_psi=0.7)
    if contract.is_stylegan3:
        angle = (torch.rand([batch], generator=gen) * 2 - 1) * MAX_ROTATE_DEG
        shift = (torch.rand([batch, 2], generator=gen) * 2 - 1) * MAX_TRANSLATE
        inputs["transform"] = input_transform(angle, shift)
    return inputs


# ------------------------------------------------------------------------------------------------
# Export, check, verify.


def _export_graph(module: nn.Module, args: tuple[torch.Tensor, ...], path: Path, contract: OnnxContract, name: str) -> None:
    inputs, outputs = contract.graph(name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter; the checks below are what count
            torch.onnx.export(
                module, args, str(path), dynamo=False, opset_version=contract.opset,
                input_names=list(inputs), output_names=list(outputs), dynamic_axes=contract.dynamic_axes(name),
                do_constant_folding=True,
            )
    except Exception as e:  # the exporter raises many types; all mean "this network did not export"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ExportError(f"ONNX export of the {name} graph failed: {first}") from e
    _record_contract(path, contract)


def _record_contract(path: Path, contract: OnnxContract) -> None:
    """Write the contract into the graph's metadata: a runtime compares it with model.json, which a person can
    edit (precision or kind changed by hand leave the graph's inputs and outputs as they were)."""
    import onnx

    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = GRAPH_CONTRACT_KEY, json.dumps(contract.to_json(), sort_keys=True)
    onnx.save(model, str(path))


def _dims(value_info: Any) -> list[Any]:
    return [d.dim_param if d.HasField("dim_param") else (d.dim_value if d.HasField("dim_value") else None)
            for d in value_info.type.tensor_type.shape.dim]


def check_graph(path: Path, contract: OnnxContract, name: str) -> None:
    """Full onnx.checker check, strict shape inference, and the interface of the contract."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
        model = onnx.shape_inference.infer_shapes(onnx.load(str(path)), check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ExportError(f"{name}.onnx fails the ONNX checks: {str(e).strip().splitlines()[0]}") from e
    inputs, outputs = contract.graph(name)
    got_in = {v.name: _dims(v) for v in model.graph.input}
    got_out = {v.name: _dims(v) for v in model.graph.output}
    for want, got, what in ((inputs, got_in, "inputs"), (outputs, got_out, "outputs")):
        if list(got) != list(want):
            raise ExportError(f"{name}.onnx has {what} {list(got)}, the contract says {list(want)}")
        for tensor, shape in want.items():
            if got[tensor] != shape:
                raise ExportError(f"{name}.onnx: {tensor} has shape {got[tensor]}, the contract says {shape}")


def _ort_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def verify_export(G: Generator, out_dir: Path, contract: OnnxContract) -> dict[str, float]:
    """Max abs errors of ONNX Runtime (CPU) against the torch fp32 network, batches 1 and 3."""
    mapping, synthesis = _ort_session(out_dir / "mapping.onnx"), _ort_session(out_dir / "synthesis.onnx")
    errors = {"ws": 0.0, "img": 0.0}
    if contract.frames:
        errors["frames"] = 0.0
    for batch in VERIFY_BATCHES:
        x = example_inputs(G, contract, batch, VERIFY_SEED + batch)
        feed = {k: x[k].numpy() for k in contract.mapping_inputs()}
        ws = mapping.run(["ws"], feed)[0]
        feed = {k: x[k].numpy() for k in contract.synthesis_inputs()}
        outs = dict(zip(contract.synthesis_outputs(), synthesis.run(list(contract.synthesis_outputs()), feed)))
        with torch.no_grad():
            ref_ws = G.mapping(x["z"], x.get("c"))
            ref_img = G.synthesis(x["ws"], transforms=x.get("transform"),
                                  **({} if contract.is_stylegan3 else {"noise_mode": contract.noise_mode}))
        errors["ws"] = max(errors["ws"], float(np.abs(ws - ref_ws.numpy()).max()))
        errors["img"] = max(errors["img"], float(np.abs(outs["img"] - ref_img.numpy()).max()))
        if contract.frames:
            diff = outs["frames"].astype(np.int16) - to_uint8_frames(ref_img).numpy().astype(np.int16)
            errors["frames"] = max(errors["frames"], float(np.abs(diff).max()))
    limits = {"ws": contract.tolerance, "img": contract.tolerance, "frames": FRAMES_TOL}
    for key, err in errors.items():
        if not err <= limits[key]:  # also catches NaN
            raise ExportVerificationError(
                f"exported {key} differs from the torch network by {err:.3g} (tolerance {limits[key]:g}, "
                f"precision {contract.precision})")
    return errors


@dataclass
class ExportResult:
    """Where the export went and how close ONNX Runtime came to torch."""

    out_dir: Path
    mapping: Path
    synthesis: Path
    model_json: Path
    max_errors: dict[str, float] = field(default_factory=dict)  # {} when not verified
    contract: OnnxContract | None = None

    @property
    def paths(self) -> list[Path]:
        return [self.mapping, self.synthesis, self.model_json]


def _foreign_entries(out_dir: Path) -> list[str]:
    """The entries of an existing folder that an export would destroy but did not write: all of them unless its
    model.json is an sg3rt export's (format, format_version), else those not in EXPORT_FILES (or not files)."""
    names = sorted(os.listdir(out_dir))
    if not is_sg3rt_record(out_dir / MODEL_JSON):
        return sorted(names, key=lambda n: n != MODEL_JSON)  # a foreign model.json first: it says the most
    return [n for n in names if n not in EXPORT_FILES or not (out_dir / n).is_file()]


def check_export_dir(out_dir: str | os.PathLike[str]) -> Path:
    """Refuse, before any work, an output folder an export cannot take: a file (or a link to nothing) in the
    way, a folder holding anything but an earlier sg3rt export (the export replaces the whole folder), or a
    place that cannot be written (a probe file beside it: the export's temp folder goes there). A new folder
    or an empty one is fine. Missing folders are not made here."""
    out_dir = Path(out_dir)
    try:
        if out_dir.is_dir():
            foreign = _foreign_entries(out_dir)
            if foreign:
                shown = ", ".join(n + "/" if (out_dir / n).is_dir() else n for n in foreign[:EXPORT_DIR_SHOWN])
                more = ", ..." if len(foreign) > EXPORT_DIR_SHOWN else ""
                raise InputError(f"{out_dir} holds files that are not an sg3rt export ({shown}{more}): "
                                 f"give a new or empty folder")
            os.unlink(create_temp_file(out_dir, ".probe"))  # its parent exists: nothing is made but the probe
        elif out_dir.exists() or out_dir.is_symlink():
            raise InputError(f"{out_dir} is a file, not a folder: give a new or empty folder")
        else:
            check_can_write(out_dir)
    except OSError as e:  # a name too long, a folder that cannot be listed
        raise os_error(out_dir, e) from None
    return out_dir


def _place_dir(tmp: Path, out_dir: Path) -> None:
    """Move a finished export into place, replacing an earlier export but nothing else (checked again: the
    folder may have changed during the export)."""
    check_export_dir(out_dir)
    old = None
    if out_dir.exists():
        old = create_temp_dir(out_dir, ".old")
        os.replace(out_dir, old / "x")
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_onnx(
    G: Generator,
    out_dir: str | os.PathLike[str],
    precision: str = "fp32",  # synthesis compute precision; inputs and outputs stay float32
    frames: bool = False,  # also output uint8 frames [B, H, W, C] from synthesis.onnx
    noise_mode: str = "const",  # StyleGAN2: const noise baked in, or none
    opset: int | None = None,  # default: contract.DEFAULT_OPSET
    source: str | os.PathLike[str] | None = None,  # the network file, hashed into model.json
    verify: bool = True,  # compare ONNX Runtime to torch and raise beyond the tolerance
    size: tuple[int, int] | None = None,  # (width, height): a StyleGAN3 canvas, a fixed graph shape (G.with_canvas)
    target: str = DEFAULT_EXPORT_TARGET,  # runtime the ops are chosen for (vocab.EXPORT_TARGETS, TARGET_FIR_FORMS)
) -> ExportResult:
    """Write mapping.onnx, synthesis.onnx and model.json into `out_dir` (atomically): a new or empty folder, or
    an earlier export, which is replaced whole; a folder holding anything else is refused (check_export_dir)."""
    if not isinstance(G, Generator):
        raise InputError(f"export_onnx needs an sg3rt Generator, got {type(G).__name__}")
    if size is not None:
        G = G.with_canvas(*parse_size(size))
    options: dict[str, Any] = {"precision": precision, "frames": bool(frames), "noise_mode": noise_mode,
                               "target": target}
    if opset is not None:
        options["opset"] = int(opset)
    contract = OnnxContract.for_generator(G, **options)
    out_dir = check_export_dir(out_dir)  # before minutes of export: a file or someone's folder in the way
    make_parent(out_dir)
    source_info = {"path": None, "sha256": generator_sha256(G)}
    if source is not None:
        source_info = {"path": str(Path(source).resolve()), "sha256": file_sha256(Path(source))}

    G = on_device(G, "cpu")  # a CPU copy where G lives elsewhere: the caller's network is never moved
    tmp = create_temp_dir(out_dir)  # a plain mkdir's mode (mkdtemp would make the export 0700)
    try:
        x = example_inputs(G, contract, TRACE_BATCH, VERIFY_SEED)
        with torch.no_grad():
            _export_graph(MappingGraph(G), tuple(x[k] for k in contract.mapping_inputs()), tmp / "mapping.onnx",
                          contract, "mapping")
            with fir_form(G, TARGET_FIR_FORMS[contract.target]):
                _export_graph(SynthesisGraph(G, contract), tuple(x[k] for k in contract.synthesis_inputs()),
                              tmp / "synthesis.onnx", contract, "synthesis")
        for name in GRAPHS:
            check_graph(tmp / f"{name}.onnx", contract, name)
        errors = verify_export(G, tmp, contract) if verify else {}
        model = {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_FORMAT_VERSION,
            "sg3rt_version": __version__,
            "torch_version": torch.__version__,
            "contract": contract.to_json(),
            "kind": contract.kind,
            "z_dim": contract.z_dim, "c_dim": contract.c_dim, "w_dim": contract.w_dim,
            "num_ws": contract.num_ws, "img_resolution": contract.img_resolution,
            "img_channels": contract.img_channels,
            "width": contract.image_size[0], "height": contract.image_size[1],  # the graph's fixed image size
            "precision": contract.precision, "opset": contract.opset,
            "target": contract.target, "fir_form": TARGET_FIR_FORMS[contract.target],
            "w_avg": [float(v) for v in G.w_avg.detach().cpu().tolist()],
            "source": source_info,
            "graphs": {name: {"file": f"{name}.onnx", "sha256": file_sha256(tmp / f"{name}.onnx"),
                              "inputs": contract.graph(name)[0], "outputs": contract.graph(name)[1]}
                       for name in GRAPHS},
            "batch_axis": BATCH,
            "tolerance": contract.tolerance,
            "max_errors": errors,
        }
        try:
            (tmp / "model.json").write_text(json.dumps(model, indent=2) + "\n")
            _place_dir(tmp, out_dir)
        except OSError as e:
            raise os_error(out_dir, e) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out_dir, out_dir / "mapping.onnx", out_dir / "synthesis.onnx", out_dir / "model.json",
                        errors, contract)
