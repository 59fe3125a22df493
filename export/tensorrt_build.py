"""ONNX graphs -> TensorRT engines (TensorRT >= 10), cached by everything that makes an engine valid.

An engine only runs on the TensorRT version and GPU that built it, for the precision and batch
profile it was built with, from exactly one ONNX graph. The cache key is those five things; an
engine whose sidecar key differs (stale) or that fails to deserialize (corrupt) is rebuilt. The
timing cache (per GPU and TensorRT version) is persisted, so rebuilds skip kernel timing.

`tensorrt` is imported only inside `import_tensorrt()`; CPU-only installs never touch it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailableError, InputError
from ..fileio import atomic_write
from ..vocab import ENGINE_PRECISIONS, check_precision
from .errors import EngineBuildError
from .exported import ExportedModel, read_model_json
MIN_TRT_MAJOR = 10  # name-based I/O (set_tensor_address, execute_async_v3)
WORKSPACE_BYTES = 4 << 30  # builder scratch memory limit: enough for 1024px tactics at batch 16
ENGINE_FORMAT_VERSION = 1  # bumped when what we put into an engine changes (layer pins, flags)
INSTALL_HINT = "pip install 'sg3rt[gpu]' (tensorrt)"


@dataclass(frozen=True)
class BatchProfile:
    """The optimisation profile on the batch axis: engines run any batch in [min, max], tuned for opt."""

    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise InputError(f"batch profile needs 1 <= MIN <= OPT <= MAX, got {self.min}:{self.opt}:{self.max}")

    @classmethod
    def parse(cls, text: str) -> "BatchProfile":
        """'MIN:OPT:MAX' (or one number N for N:N:N)."""
        try:
            parts = [int(p) for p in str(text).split(":")]
        except ValueError:
            raise InputError(f"batch profile must be MIN:OPT:MAX integers, got {text!r}") from None
        if len(parts) == 1:
            parts *= 3
        if len(parts) != 3:
            raise InputError(f"batch profile must be MIN:OPT:MAX, got {text!r}")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}"


DEFAULT_PROFILE = BatchProfile(1, 4, 16)  # interactive batch 1 up to render batches of 16


def import_tensorrt():
    """The tensorrt module, or a one-line BackendUnavailableError that says what to install."""
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendUnavailableError(f"TensorRT is not installed: {INSTALL_HINT}") from None
    major = int(str(trt.__version__).split(".")[0])
    if major < MIN_TRT_MAJOR:
        raise BackendUnavailableError(f"TensorRT {trt.__version__} is too old (need >= {MIN_TRT_MAJOR}): {INSTALL_HINT}")
    return trt


def strong_typing_only(trt) -> bool:
    """TensorRT 11 removed weak typing (BuilderFlag.FP16/BF16/OBEY_PRECISION_CONSTRAINTS, per-layer precision):
    every network is strongly typed, so an engine's precision is the ONNX graph's own (10.12 deprecated them)."""
    return not hasattr(trt.BuilderFlag, "FP16")


def require_cuda_device(device: Any = None) -> str:
    """The GPU's name, or BackendUnavailableError when torch sees no CUDA device."""
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailableError("TensorRT needs a CUDA GPU, and torch sees none (torch.cuda.is_available() is False)")
    return torch.cuda.get_device_name(device)


def engine_key(graph_sha256: str, trt_version: str, gpu_name: str, precision: str, profile: BatchProfile,
               strongly_typed: bool = False) -> dict[str, Any]:
    """Everything an engine depends on; two engines with equal keys are interchangeable."""
    check_precision(precision, ENGINE_PRECISIONS, "TensorRT")
    return {"onnx_sha256": graph_sha256, "tensorrt": str(trt_version), "gpu": gpu_name, "precision": precision,
            "profile": asdict(profile), "strongly_typed": bool(strongly_typed), "format": ENGINE_FORMAT_VERSION}


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-")


class EngineCache:
    """Engines and timing caches under `root` (default: <sg3rt cache>/tensorrt)."""

    def __init__(self, root: str | os.PathLike[str] | None = None):
        if root is None:
            from .cache import cache_root

            root = cache_root() / "tensorrt"
        self.root = Path(root)

    def engine_path(self, graph: str, key: dict[str, Any]) -> Path:
        return self.root / f"{graph}-{key['precision']}-b{key['profile']['min']}_{key['profile']['opt']}_{key['profile']['max']}-{key_digest(key)[:16]}.engine"

    def timing_cache_path(self, trt_version: str, gpu_name: str) -> Path:
        return self.root / f"timing-{_safe(gpu_name)}-trt{_safe(trt_version)}.cache"

    def load(self, graph: str, key: dict[str, Any]) -> bytes | None:
        """Cached engine bytes whose sidecar key matches exactly, else None (missing or stale)."""
        path = self.engine_path(graph, key)
        try:
            stored = json.loads(path.with_suffix(".json").read_text())
            if stored != key:
                return None
            return path.read_bytes()
        except (OSError, ValueError):
            return None

    def store(self, graph: str, key: dict[str, Any], engine: bytes) -> Path:
        path = self.engine_path(graph, key)
        atomic_write(path, lambda tmp: tmp.write_bytes(engine))
        atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(key, indent=2, sort_keys=True)))
        return path


def _pin_small_tensors_to_fp32(trt, network) -> int:
    """Keep every layer whose outputs are not 4-D activations in float32 (weakly typed builds).

    Styles, demodulation coefficients, the mapping MLP and the Fourier-feature input (sin of large
    phases) are tiny but precision-critical, the reason for fp16 garbling (stylegan3#60); the
    convolutions and elementwise ops on [B, C, H, W] activations carry the cost and run reduced.
    """
    floats = {trt.float32, trt.float16, trt.bfloat16}
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
        if not outputs or any(t.dtype not in floats for t in outputs):
            continue
        if all(len(t.shape) == 4 for t in outputs):
            continue
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            layer.set_output_type(j, trt.float32)
        pinned += 1
    return pinned


def build_engine(trt, logger, onnx_path: Path, inputs: dict[str, list[Any]], precision: str, profile: BatchProfile,
                 timing_cache: Path, strongly_typed: bool) -> bytes:
    """Parse one ONNX graph and build a serialized engine with a batch profile and a timing cache."""
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)] or ["unknown parser error"]
        raise EngineBuildError(f"TensorRT cannot parse {onnx_path.name}: {errors[0]}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means fp32: parity with the torch network
    if not strongly_typed and precision != "fp32":  # TensorRT 10's weak typing (removed in 11)
        config.set_flag(trt.BuilderFlag.FP16 if precision == "fp16" else trt.BuilderFlag.BF16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        _pin_small_tensors_to_fp32(trt, network)
    opt_profile = builder.create_optimization_profile()
    for name, shape in inputs.items():
        rest = [int(d) for d in shape[1:]]
        opt_profile.set_shape(name, [profile.min, *rest], [profile.opt, *rest], [profile.max, *rest])
    config.add_optimization_profile(opt_profile)
    cache_bytes = timing_cache.read_bytes() if timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    if not config.set_timing_cache(cache, False):  # a mismatching cache file: start a fresh one
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from {onnx_path.name} ({precision}, batch {profile})")
    timing = bytes(config.get_timing_cache().serialize())
    atomic_write(timing_cache, lambda tmp: tmp.write_bytes(timing))
    return bytes(serialized)


@dataclass
class EngineRecord:
    """A deserialized engine and where it lives in the cache."""

    graph: str
    path: Path
    key: dict[str, Any]
    built: bool  # True: built now; False: loaded from the cache
    engine: Any  # tensorrt.ICudaEngine
    runtime: Any  # the tensorrt.Runtime that deserialized it: must outlive the engine


def load_or_build_engines(
    export: ExportedModel | str | os.PathLike[str],  # an export, or its directory
    precision: str = "fp16",
    profile: BatchProfile = DEFAULT_PROFILE,
    cache_dir: str | os.PathLike[str] | None = None,
    device: Any = None,
) -> dict[str, EngineRecord]:
    """Engines for mapping (always fp32: tiny and precision-critical) and synthesis (`precision`)."""
    check_precision(precision, ENGINE_PRECISIONS, "TensorRT")
    model = export if isinstance(export, ExportedModel) else read_model_json(export)  # a wrong path says so first
    trt = import_tensorrt()
    gpu = require_cuda_device(device)
    contract = model.contract
    if strong_typing_only(trt) and precision != contract.precision:  # TensorRT 11: the graph's types are the engine's
        raise EngineBuildError(
            f"TensorRT {trt.__version__} builds strongly typed engines only: a {precision} engine needs a {precision} "
            f"export (this one is {contract.precision}; bf16 needs TensorRT 10): "
            f"sg3rt export --precision {precision} --target tensorrt")
    cache = EngineCache(cache_dir)
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    records = {}
    for graph in ("mapping", "synthesis"):
        graph_precision = "fp32" if graph == "mapping" else precision
        # An fp16 export already says which ops run in fp16: build it strongly typed, as written.
        strongly_typed = graph == "synthesis" and contract.precision == "fp16" and precision == "fp16"
        strongly_typed = strongly_typed or strong_typing_only(trt)
        key = engine_key(model.graphs[graph].sha256, trt.__version__, gpu, graph_precision, profile, strongly_typed)
        engine, built = None, False
        data = cache.load(graph, key)
        if data is not None:
            engine = runtime.deserialize_cuda_engine(data)  # None for a corrupt file
        if engine is None:
            # The key is the hash model.json records: the file built from must still be that graph (read_model_json
            # checked it; remembered hashes make this free unless the file changed since).
            model.check_graph_file(graph)
            data = build_engine(trt, logger, model.graphs[graph].path, contract.graph(graph)[0],
                                graph_precision, profile, cache.timing_cache_path(trt.__version__, gpu), strongly_typed)
            cache.store(graph, key, data)
            engine = runtime.deserialize_cuda_engine(data)
            built = True
            if engine is None:
                raise EngineBuildError(f"TensorRT cannot deserialize the engine it just built for {graph}")
        records[graph] = EngineRecord(graph, cache.engine_path(graph, key), key, built, engine, runtime)
    return records
