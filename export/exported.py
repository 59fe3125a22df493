"""model.json as a type: what an export directory holds, read and checked once.

`export_onnx` writes it; the ONNX Runtime and TensorRT runtimes and the engine builder take the
`ExportedModel` that `read_model_json` returns, never the loose JSON.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, NetworkFileError
from .contract import EXPORT_FORMAT, EXPORT_FORMAT_VERSION, GRAPHS, OnnxContract

MODEL_JSON = "model.json"  # the record inside every export directory


@dataclass(frozen=True)
class GraphFile:
    """One ONNX graph of an export: its file and the hash engines are keyed by."""

    path: Path
    sha256: str


@dataclass(frozen=True)
class ExportedModel:
    """An export directory: its contract (the graphs' interface), graph files, w_avg and provenance."""

    export_dir: Path
    contract: OnnxContract
    graphs: dict[str, GraphFile]  # "mapping" | "synthesis" -> file
    w_avg: tuple[float, ...]  # [w_dim]: truncation happens in the runtime
    source: dict[str, Any] = field(default_factory=dict)  # {"path": network file or None, "sha256": ...}
    max_errors: dict[str, float] = field(default_factory=dict)  # verification against torch, {} if skipped
    sg3rt_version: str = ""

    @property
    def precision(self) -> str:
        return self.contract.precision

    def info(self) -> dict[str, Any]:
        """The network's dimensions, as a Runtime takes them."""
        c = self.contract
        return {"kind": c.kind, "z_dim": c.z_dim, "c_dim": c.c_dim, "w_dim": c.w_dim, "num_ws": c.num_ws,
                "img_resolution": c.img_resolution, "img_channels": c.img_channels,
                "width": c.image_size[0], "height": c.image_size[1]}


def is_export_dir(path: Any) -> bool:
    """A directory with a model.json (anything else is a network file or an error)."""
    return isinstance(path, (str, os.PathLike)) and (Path(path) / MODEL_JSON).is_file()


def read_model_json(export_dir: str | os.PathLike[str]) -> ExportedModel:
    """The ExportedModel of an export directory, checked for format, version and complete graph files."""
    export_dir = Path(export_dir)
    path = export_dir / MODEL_JSON
    if not path.is_file():
        raise NetworkFileError(f"{export_dir}: not an sg3rt export (no model.json); create one with `sg3rt export`")
    try:
        model = json.loads(path.read_text())
        if model.get("format") != EXPORT_FORMAT:
            raise ValueError(f"format {model.get('format')!r}")
        if int(model["format_version"]) > EXPORT_FORMAT_VERSION:
            raise NetworkFileError(f"{path}: written by a newer sg3rt; upgrade sg3rt")
        contract = OnnxContract.from_json(model["contract"])
        graphs = {name: GraphFile(export_dir / model["graphs"][name]["file"], str(model["graphs"][name]["sha256"]))
                  for name in GRAPHS}
        w_avg = tuple(float(v) for v in model["w_avg"])
        if len(w_avg) != contract.w_dim:
            raise ValueError(f"w_avg has {len(w_avg)} values, w_dim is {contract.w_dim}")
    except NetworkFileError:
        raise
    except (ValueError, KeyError, TypeError, InputError) as e:
        raise NetworkFileError(f"{path}: broken model.json ({e})") from None
    for name, graph in graphs.items():
        if not graph.path.is_file():
            raise NetworkFileError(f"{export_dir}: {name}.onnx is missing; re-export")
    return ExportedModel(export_dir, contract, graphs, w_avg, dict(model.get("source") or {}),
                         dict(model.get("max_errors") or {}), str(model.get("sg3rt_version", "")))
