"""Runtimes: one Generator-like interface over PyTorch, ONNX Runtime and TensorRT."""

from ..networks import to_uint8_frames
from ..vocab import BACKENDS
from .base import Runtime
from .registry import open_generator

__all__ = ["Runtime", "BACKENDS", "open_generator", "to_uint8_frames"]
