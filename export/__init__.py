"""Export: torch Generator -> ONNX graphs (checked, verified) -> TensorRT engines (lazy import).

Owns the export cache too: `cached_export` gives the runtimes an export directory for a network file.
"""

from .cache import cached_export
from .contract import DEFAULT_OPSET, OnnxContract
from .errors import EngineBuildError, ExportError, ExportVerificationError
from .exported import ExportedModel, GraphFile, is_export_dir, read_model_json
from .onnx_export import ExportResult, check_export_dir, export_onnx

__all__ = ["DEFAULT_OPSET", "OnnxContract", "ExportResult", "ExportedModel", "GraphFile", "cached_export",
           "check_export_dir", "export_onnx", "is_export_dir", "read_model_json", "ExportError", "ExportVerificationError",
           "EngineBuildError"]
