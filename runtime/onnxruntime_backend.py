"""ONNX Runtime backend: an export directory run by the CPU or CUDA execution provider.

On CPU, tensors go to ORT as numpy views (no copy). On CUDA, inputs and outputs are torch CUDA
tensors bound with IOBinding, so images never leave the GPU until `frames()` has quantised them.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from ..errors import BackendUnavailableError, InputError, NetworkFileError
from ..export import ExportedModel, read_model_json
from .base import Runtime
from .graph_inputs import synthesis_feed

_NUMPY_DTYPES = {"img": np.float32, "ws": np.float32, "frames": np.uint8}
_TORCH_DTYPES = {np.float32: torch.float32, np.uint8: torch.uint8}
# ONNX Runtime's CPU provider ran single images 1.4-1.6x faster per image than batches of 4 (issue 13, sg3r_64
# and sg3r_256, 2 cores; this session's busy-machine runs agree, benchmarks/results/bench_backends.json): CPU
# synthesis batches run one image per session call.
CPU_SYNTHESIS_CHUNK = 1
# A batch on a multi-core CPU runs its images side by side, one single-threaded session call each: ORT's
# intra-op threads scale poorly on these graphs (sg3r_256, onnxruntime-cpu form, 2 cores: 1.1x from the second
# thread), images in parallel well (quiet machine: 127 ms per image against 171 with 2 intra-op threads).
# As for PyTorch's CPU batches, only small images: a 1024 px image alone needs GiBs of activations.
CPU_PARALLEL_MAX_RES = 256
CPU_PARALLEL_MAX_IMAGES = 4  # images in flight at once, at most
CUDA_HINT = "pip install 'sg3rt[gpu]' (onnxruntime-gpu) and make sure CUDA is visible"


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise BackendUnavailableError("ONNX Runtime is not installed: pip install onnxruntime") from None
    return onnxruntime


def _session_options(ort: Any, threads: int | None) -> Any:
    """Session options: errors-only logging; `threads` intra-op threads (None: ONNX Runtime's choice)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    if threads is not None:
        options.intra_op_num_threads = int(threads)
    return options


def ort_cuda_available() -> bool:
    """Whether ONNX Runtime has the CUDA execution provider and torch sees a GPU for its buffers."""
    try:
        ort = _import_onnxruntime()
    except BackendUnavailableError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers() and torch.cuda.is_available()


class OnnxRuntimeRuntime(Runtime):
    backend = "onnxruntime"

    def __init__(self, export: ExportedModel | str | os.PathLike[str], device: str | torch.device = "cpu",
                 precision: str | None = None, threads: int | None = None):
        ort = _import_onnxruntime()
        model = export if isinstance(export, ExportedModel) else read_model_json(export)
        self.export_dir = model.export_dir
        self.contract = model.contract
        if precision is not None and precision != self.contract.precision:
            raise InputError(f"{self.export_dir} was exported in {self.contract.precision}; "
                             f"re-export with --precision {precision} for ONNX Runtime {precision}")
        device = torch.device(device)
        if device.type == "cuda":
            if not ort_cuda_available():
                raise BackendUnavailableError(f"ONNX Runtime CUDA provider is not available: {CUDA_HINT}")
            # use_tf32 0: ORT's CUDA provider would otherwise run fp32 convs and GEMMs in TF32 (10-bit mantissa)
            cuda_options = {"device_id": device.index or 0, "use_tf32": 0}
            providers: list[Any] = [("CUDAExecutionProvider", cuda_options), "CPUExecutionProvider"]
            device = torch.device("cuda", device.index or 0)
        elif device.type == "cpu":
            providers = ["CPUExecutionProvider"]
        else:
            raise InputError(f"ONNX Runtime runs on cpu or cuda, not {device}")
        options = _session_options(ort, threads)
        self.sessions = {}
        # images of a CPU batch run in parallel on this many workers (see CPU_SYNTHESIS_CHUNK)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.workers = min(int(threads) if threads is not None else cores, CPU_PARALLEL_MAX_IMAGES)
        self._parallel: tuple[Any, Any] | None = None  # (single-threaded synthesis session, thread pool), on first use
        self._synthesis_path = model.graphs["synthesis"].path
        for name in ("mapping", "synthesis"):
            path = model.graphs[name].path
            try:
                self.sessions[name] = ort.InferenceSession(str(path), options, providers=providers)
            except Exception as e:  # ORT raises its own exception types for unreadable graphs
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise NetworkFileError(f"{path}: ONNX Runtime cannot load it ({first})") from None
            if device.type == "cuda" and "CUDAExecutionProvider" not in self.sessions[name].get_providers():
                # ORT falls back to the CPU silently when CUDA or cuDNN libraries fail to load
                raise BackendUnavailableError(f"ONNX Runtime could not start its CUDA provider for {path.name} "
                                              f"(CUDA 13 / cuDNN 9 libraries not found?): {CUDA_HINT}")
        # model.json can be edited by hand: its contract must be what the graphs have (names, types, shapes, metadata)
        model.check_graph_interfaces({name: ([(a.name, a.type, a.shape) for a in session.get_inputs()],
                                             [(a.name, a.type, a.shape) for a in session.get_outputs()],
                                             dict(session.get_modelmeta().custom_metadata_map))
                                      for name, session in self.sessions.items()})
        super().__init__(model.info(), torch.tensor(model.w_avg, dtype=torch.float32), device, self.contract.precision)

    # -- running a graph ------------------------------------------------------------------------
    def _run(self, graph: str, inputs: dict[str, torch.Tensor], outputs: list[str]) -> list[torch.Tensor]:
        session = self.sessions[graph]
        if self.device.type == "cpu":
            feed = {name: t.detach().contiguous().numpy() for name, t in inputs.items()}
            batch = next(iter(feed.values())).shape[0]
            size = CPU_SYNTHESIS_CHUNK if graph == "synthesis" else batch
            starts = range(0, batch, max(size, 1)) or [0]  # batch 0 runs once, empty
            if (graph == "synthesis" and len(starts) > 1 and self.workers > 1
                    and max(self.width, self.height) <= CPU_PARALLEL_MAX_RES):
                single, pool = self._parallel_synthesis()
                parts = list(pool.map(lambda i: single.run(outputs, {k: v[i : i + size] for k, v in feed.items()}),
                                      starts))
            else:
                parts = [session.run(outputs, {k: v[i : i + size] for k, v in feed.items()}) for i in starts]
            return [torch.from_numpy(np.concatenate([p[j] for p in parts]) if len(parts) > 1 else parts[0][j])
                    for j in range(len(outputs))]
        batch = next(iter(inputs.values())).shape[0]
        shapes = self.contract.graph(graph)[1]
        binding = session.io_binding()
        index = self.device.index or 0
        kept = []  # keep contiguous inputs alive until the run ends
        for name, t in inputs.items():
            t = t.detach().contiguous()
            kept.append(t)
            binding.bind_input(name, "cuda", index, np.float32, list(t.shape), t.data_ptr())
        results = []
        for name in outputs:
            shape = [batch if d == "batch" else d for d in shapes[name]]
            dtype = _NUMPY_DTYPES[name]
            out = torch.empty(shape, dtype=_TORCH_DTYPES[dtype], device=self.device)
            binding.bind_output(name, "cuda", index, dtype, shape, out.data_ptr())
            results.append(out)
        torch.cuda.current_stream(self.device).synchronize()  # inputs written by torch are ready
        session.run_with_iobinding(binding)  # synchronises ORT's stream before returning
        return results

    def _parallel_synthesis(self) -> tuple[Any, Any]:
        """A single-threaded synthesis session and `workers` threads to call it (ORT's run is thread-safe and
        releases the GIL): made on the first CPU batch, so single images never pay for it."""
        if self._parallel is None:
            from concurrent.futures import ThreadPoolExecutor

            ort = _import_onnxruntime()
            session = ort.InferenceSession(str(self._synthesis_path), _session_options(ort, 1),
                                           providers=["CPUExecutionProvider"])
            self._parallel = session, ThreadPoolExecutor(self.workers, thread_name_prefix="sg3rt-ort")
        return self._parallel

    def _mapping(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        inputs = {"z": z}
        if self.c_dim > 0:
            inputs["c"] = c
        return self._run("mapping", inputs, ["ws"])[0]

    def _synthesis(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        return self._run("synthesis", synthesis_feed(self.contract, ws, transforms), ["img"])[0]

    def _frames(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        if not self.contract.frames:
            return super()._frames(ws, transforms, noise_mode)
        return self._run("synthesis", synthesis_feed(self.contract, ws, transforms), ["frames"])[0]

    def _release(self) -> None:
        self.sessions = {}
        if self._parallel is not None:
            self._parallel[1].shutdown(wait=True)
            self._parallel = None
