"""Export: torch Generator -> ONNX graphs (checked, verified) -> TensorRT engines (lazy import)."""

from .contract import DEFAULT_OPSET, OnnxContract
from .errors import EngineBuildError, ExportError, ExportVerificationError
from .onnx_export import ExportResult, export_onnx, read_model_json

__all__ = ["DEFAULT_OPSET", "OnnxContract", "ExportResult", "export_onnx", "read_model_json",
           "ExportError", "ExportVerificationError", "EngineBuildError"]
