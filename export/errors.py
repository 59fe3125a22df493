"""Typed export errors (optimum `error_utils` style): what failed, in one line, by class."""

from ..errors import Sg3rtError


class ExportError(Sg3rtError):
    """The torch -> ONNX export or its graph checks failed."""


class ExportVerificationError(ExportError):
    """The exported graph runs but its outputs differ from the torch network beyond the tolerance."""


class EngineBuildError(Sg3rtError):
    """TensorRT could not parse the ONNX graph or build an engine from it."""
