"""TensorRT backend: engines from an export directory, run on torch CUDA tensors (no pycuda).

TensorRT >= 10 name-based I/O: set_input_shape + set_tensor_address(tensor.data_ptr()) for every
I/O tensor, then execute_async_v3 on torch's current stream, so TensorRT work orders with torch
work without host synchronisation. Batches beyond the profile are split; a batch below its minimum
is padded. Optionally, synthesis at one fixed batch is captured in a CUDA graph and replayed.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..errors import InputError, NetworkFileError
from ..export import ExportedModel, read_model_json
from ..networks import to_uint8_frames
from .base import Runtime
from .cuda_graph import CapturedCall
from .graph_inputs import synthesis_feed


def _torch_dtype(trt, dtype) -> torch.dtype:
    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.uint8: torch.uint8, trt.int32: torch.int32}
    if hasattr(trt, "bfloat16"):
        table[trt.bfloat16] = torch.bfloat16
    return table[dtype]


def check_engine_io(graph: str, engine_path: Any, inputs: list[str], outputs: list[str], contract: Any) -> None:
    """An engine must take the inputs the export's contract feeds and give the outputs it reads: one built from
    another graph (a cache entry copied in by hand, say) would fail with a KeyError deep in a call, or run."""
    want_in, want_out = contract.graph(graph)
    if sorted(inputs) != sorted(want_in) or sorted(outputs) != sorted(want_out):
        raise NetworkFileError(
            f"{engine_path}: the TensorRT engine has inputs {inputs} and outputs {outputs}, but {graph}.onnx has "
            f"{list(want_in)} and {list(want_out)}: delete that engine from the cache and build it again")


class EngineRunner:
    """One engine, one execution context; inputs and outputs are torch CUDA tensors by name."""

    def __init__(self, trt, record: Any, device: torch.device):
        self.trt, self.record, self.engine, self.device = trt, record, record.engine, device
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise InputError(f"TensorRT could not create an execution context for {record.path.name} (out of GPU memory?)")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.dtypes = {n: _torch_dtype(trt, self.engine.get_tensor_dtype(n)) for n in names}
        lo, _, hi = self.engine.get_tensor_profile_shape(self.inputs[0], 0)
        self.min_batch, self.max_batch = int(lo[0]), int(hi[0])
        self.graph: CapturedCall | None = None  # captured execution at self.graph_batch
        self.graph_batch = 0

    def _bind(self, context: Any, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Set shapes and addresses; allocate outputs. Inputs must stay alive until the stream runs."""
        for name in self.inputs:
            t = inputs[name]
            context.set_input_shape(name, tuple(t.shape))
            context.set_tensor_address(name, t.data_ptr())
        outputs = {}
        for name in self.outputs:
            shape = tuple(context.get_tensor_shape(name))
            outputs[name] = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
            context.set_tensor_address(name, outputs[name].data_ptr())
        return outputs

    def _execute(self, context: Any, stream: torch.cuda.Stream) -> None:
        if not context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"TensorRT execution of {self.record.path.name} failed")

    def _run_on(self, context: Any, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Bind and enqueue one execution on torch's current stream (inputs stay alive until it runs)."""
        outputs = self._bind(context, inputs)
        self._execute(context, torch.cuda.current_stream(self.device))
        return outputs

    def _run_chunk(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        batch = inputs[self.inputs[0]].shape[0]
        if self.graph is not None and batch == self.graph_batch:
            outputs = self.graph(*(inputs[name] for name in self.inputs))
            return {name: t.clone() for name, t in outputs.items()}
        return self._run_on(self.context, inputs)

    def run(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Any batch: chunks of at most max_batch, the last one padded up to min_batch if needed."""
        inputs = {n: inputs[n].to(self.device, self.dtypes[n]).contiguous() for n in self.inputs}
        batch = inputs[self.inputs[0]].shape[0]
        chunks = []
        for start in range(0, batch, self.max_batch):
            part = {n: t[start:start + self.max_batch] for n, t in inputs.items()}
            size = part[self.inputs[0]].shape[0]
            if size < self.min_batch:  # repeat the last sample; the extra outputs are dropped
                part = {n: torch.cat([t, t[-1:].expand(self.min_batch - size, *t.shape[1:])]) for n, t in part.items()}
            out = self._run_chunk(part)
            chunks.append({n: t[:size] for n, t in out.items()})
        if len(chunks) == 1:
            return chunks[0]
        return {n: torch.cat([c[n] for c in chunks]) for n in self.outputs}

    def capture(self, batch: int) -> None:
        """Record one execution at `batch` in a CUDA graph (sg3rt's one capture, CapturedCall); run() replays it."""
        if not self.min_batch <= batch <= self.max_batch:
            raise InputError(f"CUDA graph batch {batch} is outside the engine profile {self.min_batch}..{self.max_batch}")
        example = [torch.zeros([batch, *self.engine.get_tensor_shape(n)[1:]], dtype=self.dtypes[n], device=self.device)
                   for n in self.inputs]
        context = self.engine.create_execution_context()  # its own: run() may change the main one's shapes
        self.graph_context = context  # keep alive: the graph replays its kernels

        def execute(*tensors: torch.Tensor) -> dict[str, torch.Tensor]:
            return self._run_on(context, dict(zip(self.inputs, tensors)))

        self.graph, self.graph_batch = CapturedCall(execute, example), batch


class TensorRTRuntime(Runtime):
    backend = "tensorrt"

    def __init__(self, export: ExportedModel | str | os.PathLike[str], device: str | torch.device = "cuda",
                 precision: str = "fp16", profile: Any = None, cache_dir: str | os.PathLike[str] | None = None,
                 cuda_graph_batch: int | None = None):
        from ..export.tensorrt_build import DEFAULT_PROFILE, import_tensorrt, load_or_build_engines, require_cuda_device

        trt = import_tensorrt()
        device = torch.device(device)
        if device.type != "cuda":
            raise InputError(f"TensorRT runs on CUDA devices only, not {device}")
        require_cuda_device()
        device = torch.device("cuda", device.index if device.index is not None else torch.cuda.current_device())
        torch.cuda.set_device(device)  # TensorRT uses the current device's primary context
        model = export if isinstance(export, ExportedModel) else read_model_json(export)
        self.export_dir, self.contract = model.export_dir, model.contract
        self.records = load_or_build_engines(model, precision, profile or DEFAULT_PROFILE, cache_dir, device)
        self.runners = {g: EngineRunner(trt, r, device) for g, r in self.records.items()}
        for g, runner in self.runners.items():
            check_engine_io(g, self.records[g].path, runner.inputs, runner.outputs, self.contract)
        if cuda_graph_batch is not None:
            self.runners["synthesis"].capture(int(cuda_graph_batch))
        super().__init__(model.info(), torch.tensor(model.w_avg, dtype=torch.float32), device, precision)

    @torch.inference_mode()
    def _mapping(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        inputs = {"z": z} if self.c_dim == 0 else {"z": z, "c": c}
        return self.runners["mapping"].run(inputs)["ws"]

    def _synthesis_outputs(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> dict[str, torch.Tensor]:
        return self.runners["synthesis"].run(synthesis_feed(self.contract, ws, transforms))

    @torch.inference_mode()
    def _synthesis(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        return self._synthesis_outputs(ws, transforms, noise_mode)["img"].float()

    @torch.inference_mode()
    def _frames(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        outputs = self._synthesis_outputs(ws, transforms, noise_mode)
        if "frames" in outputs:
            return outputs["frames"]
        return to_uint8_frames(outputs["img"].float())

    def _release(self) -> None:
        self.runners = {}
        self.records = {}
