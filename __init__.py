"""sg3rt: StyleGAN3/StyleGAN2 generators as fast, export-friendly PyTorch, ONNX and TensorRT."""

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    BackendUnavailableError,
    DeviceMemoryError,
    InputError,
    NetworkFileError,
    Sg3rtError,
    UnsafePickleError,
    UnsupportedNetworkError,
)
from .networks import Generator, input_transform, load_generator, save_generator  # noqa: E402

__all__ = [
    "__version__",
    "Generator",
    "load_generator",
    "save_generator",
    "input_transform",
    "Sg3rtError",
    "NetworkFileError",
    "UnsupportedNetworkError",
    "UnsafePickleError",
    "InputError",
    "BackendUnavailableError",
    "DeviceMemoryError",
]
