"""model.json as a type: what an export directory holds, read and checked once.

`export_onnx` writes it; the ONNX Runtime and TensorRT runtimes and the engine builder take the
`ExportedModel` that `read_model_json` returns, never the loose JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from ..errors import InputError, NetworkFileError
from .contract import BATCH, EXPORT_FORMAT, EXPORT_FORMAT_VERSION, GRAPH_CONTRACT_KEY, GRAPHS, OnnxContract

MODEL_JSON = "model.json"  # the record inside every export directory
# model.json repeats these contract fields at its top level (for people and other tools); they must agree
MIRRORED_FIELDS = ("kind", "z_dim", "c_dim", "w_dim", "num_ws", "img_resolution", "img_channels", "precision",
                   "opset", "target")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")  # a recorded graph hash
MODEL_JSON_MAX_BYTES = 1 << 20  # ours is ~20 KB (w_avg); a larger model.json is not one an export wrote
HASH_MEMO_SIZE = 16  # graph hashes remembered per process (an export opened twice is hashed once)
ONNX_FLOAT, ONNX_UINT8 = "tensor(float)", "tensor(uint8)"  # ONNX Runtime's type names of the graphs' I/O
UINT8_TENSORS = ("frames",)  # the one uint8 tensor of the contract; every other input and output is float32

GraphTensor = tuple[str, str, list[Any]]  # (name, ONNX Runtime type, shape) of a graph input or output
GraphInterface = tuple[Iterable[GraphTensor], Iterable[GraphTensor], dict[str, str]]  # inputs, outputs, metadata


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
        """The network's dimensions, as a Runtime takes them, and the StyleGAN2 noise baked into the graph
        (a runtime's default noise mode, as the export's precision is its default precision)."""
        c = self.contract
        return {"kind": c.kind, "z_dim": c.z_dim, "c_dim": c.c_dim, "w_dim": c.w_dim, "num_ws": c.num_ws,
                "img_resolution": c.img_resolution, "img_channels": c.img_channels,
                "width": c.image_size[0], "height": c.image_size[1],
                **({} if c.is_stylegan3 else {"noise_mode": c.noise_mode})}

    def check_graph_file(self, name: str) -> None:
        """Refuse a graph file that is not the one model.json records (copied over, truncated, edited): it
        would run silently with wrong outputs, or reach the TensorRT engine cache under another graph's key."""
        graph = self.graphs[name]
        if not graph.path.is_file():
            raise NetworkFileError(f"{self.export_dir}: {graph.path.name} is missing; re-export")
        try:
            digest = graph_sha256(graph.path)
        except OSError as e:
            raise NetworkFileError(f"{graph.path}: cannot read it ({e.strerror or e})") from None
        if digest != graph.sha256:
            raise NetworkFileError(f"{graph.path} does not match its model.json (changed after export); export again")

    def check_graph_interfaces(self, graphs: dict[str, GraphInterface]) -> None:
        """Refuse a model.json whose contract is not what the graphs have: a hand-edited model.json would
        give tracebacks from the runtime (missing inputs) or silently wrong behaviour (the wrong precision).

        graphs: name -> (inputs, outputs, metadata) as a runtime's sessions report them: tensors as (name, ONNX
        Runtime type such as "tensor(float)", shape); metadata the graph's metadata_props, whose GRAPH_CONTRACT_KEY
        (older exports lack it) is compared in full. Inputs and outputs first: they say the most.
        """
        for name, (inputs, outputs, _) in graphs.items():
            want_in, want_out = self.contract.graph(name)
            for want, got, what in ((want_in, list(inputs), "inputs"), (want_out, list(outputs), "outputs")):
                names = [tensor for tensor, _, _ in got]
                if names != list(want):
                    self._mismatch(name, f"{what} {list(want)} in model.json, {names} in the graph")
                for tensor, dtype, shape in got:
                    want_dtype = ONNX_UINT8 if tensor in UINT8_TENSORS else ONNX_FLOAT
                    if dtype != want_dtype:
                        self._mismatch(name, f"{tensor} is {want_dtype} in model.json, {dtype} in the graph")
                    if not _same_shape(want[tensor], list(shape)):
                        self._mismatch(name, f"{tensor} has shape {want[tensor]} in model.json, {list(shape)} in the graph")
        ours = self.contract.to_json()
        for name in [n for n in ("synthesis", "mapping") if n in graphs]:  # synthesis first: precision, noise are its
            metadata = graphs[name][2]
            if GRAPH_CONTRACT_KEY not in metadata:
                continue
            try:
                recorded = json.loads(metadata[GRAPH_CONTRACT_KEY])
            except ValueError:
                recorded = {}
            recorded = recorded if isinstance(recorded, dict) else {}
            for key, value in ours.items():
                if key not in recorded or recorded[key] != value:
                    self._mismatch(name, f"{key} is {value!r} in model.json, {recorded.get(key)!r} in the graph")

    def _mismatch(self, name: str, what: str) -> None:
        raise NetworkFileError(f"{self.export_dir / MODEL_JSON} does not match {name}.onnx ({what})")


def _same_shape(want: list[Any], got: list[Any]) -> bool:
    """The contract's shape (BATCH for the dynamic axis) against a graph's (a name or None where dynamic)."""
    if len(want) != len(got):
        return False
    return all((g is None or isinstance(g, str)) if w == BATCH else (isinstance(g, int) and g == w)
               for w, g in zip(want, got))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@lru_cache(maxsize=HASH_MEMO_SIZE)
def _sha256_of(path: str, identity: tuple[int, ...]) -> str:
    return file_sha256(Path(path))


def graph_sha256(path: Path) -> str:
    """A file's sha256, hashed again only when its inode, size or times change: a cached export is checked
    when the cache opens it and again by the runtime (a 1024 px graph takes about a second to hash)."""
    st = path.stat()  # ctime changes on every write, whatever a copy does to mtime
    return _sha256_of(str(path.resolve()), (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))


def _check_graph_entry(name: str, entry: Any) -> tuple[str, str]:
    """(file, sha256) of model.json's graphs[name]: a file name inside the export directory and a hex digest."""
    if not isinstance(entry, dict):
        raise ValueError(f"graphs.{name} is not an object")
    file, digest = entry["file"], entry["sha256"]
    if not isinstance(file, str) or not file or Path(file).name != file or file in (".", ".."):
        raise ValueError(f"graphs.{name}.file must be a file name in the export directory, got {file!r}")
    if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
        raise ValueError(f"graphs.{name}.sha256 is not a sha256 hex digest")
    return file, digest


def _check_w_avg(values: Any, w_dim: int) -> tuple[float, ...]:
    """w_avg: w_dim finite numbers (a NaN would turn every truncated image into NaN)."""
    if not isinstance(values, list) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise ValueError("w_avg must be a list of numbers")
    if len(values) != w_dim:
        raise ValueError(f"w_avg has {len(values)} values, w_dim is {w_dim}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError("w_avg holds NaN or infinite values")
    return tuple(float(v) for v in values)


def _check_mirrors(model: dict[str, Any], contract: OnnxContract) -> None:
    """The top-level copies of contract fields agree with the contract (a hand edit changes one of them)."""
    ours = {key: getattr(contract, key) for key in MIRRORED_FIELDS}
    ours["width"], ours["height"] = contract.image_size
    for key, value in ours.items():
        if key in model and (model[key] != value or isinstance(model[key], bool) != isinstance(value, bool)):
            raise ValueError(f"{key} is {model[key]!r} at the top level, {value!r} in the contract")


def is_sg3rt_record(path: Path) -> bool:
    """Whether the file `path` is a model.json that sg3rt's exporter wrote: a JSON object whose `format` is
    EXPORT_FORMAT with an integer `format_version`, however broken the rest (a damaged export may be replaced).
    Any other model.json (a HuggingFace config, ...) is someone else's, and so is the folder it is in."""
    try:
        if not path.is_file() or path.stat().st_size > MODEL_JSON_MAX_BYTES:
            return False
        model = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return False
    version = model.get("format_version") if isinstance(model, dict) else None
    return (isinstance(model, dict) and model.get("format") == EXPORT_FORMAT
            and isinstance(version, int) and not isinstance(version, bool))


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
        text = path.read_text()
    except OSError as e:
        raise NetworkFileError(f"{path}: cannot read it ({e.strerror or e})") from None
    try:
        model = json.loads(text)
        if not isinstance(model, dict):
            raise ValueError(f"a JSON {type(model).__name__}, not an object")
        if model.get("format") != EXPORT_FORMAT:
            raise ValueError(f"format {model.get('format')!r}")
        version = model["format_version"]
        if isinstance(version, bool) or not isinstance(version, int):
            raise ValueError(f"format_version {version!r}")
        if version > EXPORT_FORMAT_VERSION:
            raise NetworkFileError(f"{path}: written by a newer sg3rt; upgrade sg3rt")
        contract = OnnxContract.from_json(model["contract"])
        _check_mirrors(model, contract)
        if not isinstance(model["graphs"], dict):
            raise ValueError("graphs is not an object")
        graphs = {}
        for name in GRAPHS:
            file, digest = _check_graph_entry(name, model["graphs"][name])
            graphs[name] = GraphFile(export_dir / file, digest)
        w_avg = _check_w_avg(model["w_avg"], contract.w_dim)
        source, max_errors = model.get("source") or {}, model.get("max_errors") or {}
        if not isinstance(source, dict) or not isinstance(max_errors, dict):
            raise ValueError("source and max_errors must be objects")
    except NetworkFileError:
        raise
    except KeyError as e:
        raise NetworkFileError(f"{path}: broken model.json (no {e.args[0]!r})") from None
    except (ValueError, TypeError, InputError) as e:
        raise NetworkFileError(f"{path}: broken model.json ({e})") from None
    exported = ExportedModel(export_dir, contract, graphs, w_avg, dict(source), dict(max_errors),
                             str(model.get("sg3rt_version", "")))
    for name in GRAPHS:
        exported.check_graph_file(name)
    return exported
