"""Runtimes: one Generator-like interface over PyTorch, ONNX Runtime and TensorRT."""

from .base import Runtime, to_uint8_frames
from .registry import BACKENDS, open_generator

__all__ = ["Runtime", "BACKENDS", "open_generator", "to_uint8_frames"]
