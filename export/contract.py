"""The export contract as data: graph names, tensor shapes, dynamic axes, opset and tolerance.

One frozen dataclass (huggingface/optimum `OnnxConfig` style) describes what `export_onnx` writes
and what every runtime reading an export directory may rely on; model.json stores it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import InputError
from ..vocab import DEFAULT_EXPORT_TARGET, EXPORT_TARGETS, KINDS, PRECISIONS, check_choice, is_stylegan3

DEFAULT_OPSET = 17  # TensorRT 10 and ONNX Runtime >= 1.17 run it; the TorchScript exporter supports it
MIN_OPSET, MAX_OPSET = 14, 20  # range the TorchScript exporter writes and we test
NOISE_MODES = ("const", "none")  # StyleGAN2 noise baked into the graph (random noise does not export)
BATCH = "batch"  # name of the dynamic batch axis in every graph
FP32_TOL = 1e-4  # max abs error of an fp32 export against the torch network (images in about [-1, 1])
FP16_TOL = 5e-2  # fp16 export vs the torch fp32 network: ~3e-3 on the references; garbling (stylegan3#60) is O(1)
FRAMES_TOL = 1  # max uint8 difference of the frames output (rounding at .5 boundaries)
EXPORT_FORMAT = "sg3rt-onnx"  # model.json "format"
EXPORT_FORMAT_VERSION = 2  # bumped when model.json or the graph interface changes (2: canvas width/height)

Shape = list[Any]  # ints, or BATCH for the dynamic axis


@dataclass(frozen=True)
class OnnxContract:
    """Inputs, outputs and numerics of the mapping and synthesis graphs of one network."""

    kind: str  # "stylegan3-r" | "stylegan3-t" | "stylegan2"
    z_dim: int
    c_dim: int  # 0 = unconditional: the mapping graph then has no `c` input
    w_dim: int
    num_ws: int
    img_resolution: int
    img_channels: int
    width: int | None = None  # of the synthesis output: a StyleGAN3 canvas (fixed graph shape); None = img_resolution
    height: int | None = None
    precision: str = "fp32"  # synthesis compute precision (vocab.PRECISIONS); I/O is always float32
    frames: bool = False  # synthesis.onnx also outputs uint8 `frames` [B, H, W, C]
    noise_mode: str = "const"  # StyleGAN2 only: const noise baked in, or none
    opset: int = DEFAULT_OPSET
    target: str = DEFAULT_EXPORT_TARGET  # the runtime the graph's ops are chosen for (vocab.EXPORT_TARGETS)

    def __post_init__(self) -> None:
        # Checked here, not trusted: model.json is a file a person can edit (read_model_json builds this from it).
        check_choice(self.kind, KINDS, "network kind")
        for name in ("z_dim", "w_dim", "num_ws", "img_resolution", "img_channels"):
            _check_int(name, getattr(self, name), 1)
        _check_int("c_dim", self.c_dim, 0)
        for name in ("width", "height"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)
        if not self.is_stylegan3 and self.image_size != (self.img_resolution, self.img_resolution):
            raise InputError(f"a {self.kind} graph has no canvas: width and height must be img_resolution")
        if not isinstance(self.frames, bool):
            raise InputError(f"frames must be true or false, got {self.frames!r}")
        _check_int("opset", self.opset, 0)
        check_choice(self.target, EXPORT_TARGETS, "export target")
        if self.precision not in PRECISIONS:
            raise InputError(f"export precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.noise_mode not in NOISE_MODES:
            raise InputError(f"export noise mode must be one of {', '.join(NOISE_MODES)}, got {self.noise_mode!r}")
        if not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise InputError(f"opset must be between {MIN_OPSET} and {MAX_OPSET}, got {self.opset}")

    @classmethod
    def for_generator(cls, G: Any, **options: Any) -> "OnnxContract":
        canvas = {} if G.canvas is None else {"width": G.canvas[0], "height": G.canvas[1]}
        return cls(kind=G.kind, z_dim=G.z_dim, c_dim=G.c_dim, w_dim=G.w_dim, num_ws=G.num_ws,
                   img_resolution=G.img_resolution, img_channels=G.img_channels, **canvas, **options)

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the images synthesis.onnx outputs."""
        return (self.width or self.img_resolution, self.height or self.img_resolution)

    @property
    def is_stylegan3(self) -> bool:
        return is_stylegan3(self.kind)

    @property
    def tolerance(self) -> float:
        """Max abs error of `img` allowed against the torch fp32 network."""
        return FP32_TOL if self.precision == "fp32" else FP16_TOL

    # -- graph interfaces (ordered: the order of the graph's inputs and outputs) -------------------
    def mapping_inputs(self) -> dict[str, Shape]:
        inputs: dict[str, Shape] = {"z": [BATCH, self.z_dim]}
        if self.c_dim > 0:
            inputs["c"] = [BATCH, self.c_dim]
        return inputs

    def mapping_outputs(self) -> dict[str, Shape]:
        return {"ws": [BATCH, self.num_ws, self.w_dim]}  # untruncated; runtimes truncate with w_avg

    def synthesis_inputs(self) -> dict[str, Shape]:
        inputs: dict[str, Shape] = {"ws": [BATCH, self.num_ws, self.w_dim]}
        if self.is_stylegan3:
            inputs["transform"] = [BATCH, 3, 3]  # official buffer semantics, one per sample
        return inputs

    def synthesis_outputs(self) -> dict[str, Shape]:
        (w, h), ch = self.image_size, self.img_channels
        outputs: dict[str, Shape] = {"img": [BATCH, ch, h, w]}  # float32 NCHW, about [-1, 1]
        if self.frames:
            outputs["frames"] = [BATCH, h, w, ch]  # uint8 NHWC
        return outputs

    def graph(self, name: str) -> tuple[dict[str, Shape], dict[str, Shape]]:
        """(inputs, outputs) of "mapping" or "synthesis"."""
        if name == "mapping":
            return self.mapping_inputs(), self.mapping_outputs()
        if name == "synthesis":
            return self.synthesis_inputs(), self.synthesis_outputs()
        raise KeyError(name)

    def dynamic_axes(self, name: str) -> dict[str, dict[int, str]]:
        inputs, outputs = self.graph(name)
        return {tensor: {0: BATCH} for tensor in (*inputs, *outputs)}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "OnnxContract":
        if not isinstance(data, dict):
            raise InputError(f"the contract is a JSON {type(data).__name__}, not an object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown contract field {unknown[0]!r}")
        return cls(**data)


def _check_int(name: str, value: Any, minimum: int) -> None:
    """An int (not a bool, float or string: JSON gives all of them) of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")


GRAPHS = ("mapping", "synthesis")  # graph files are f"{name}.onnx"
GRAPH_CONTRACT_KEY = "sg3rt.contract"  # ONNX metadata_props key: the contract a graph was exported with (JSON)
