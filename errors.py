"""Typed errors: every failure a user can cause has a class and a one-line message.

The CLI turns any `Sg3rtError` into that line and exit code 2; library users catch them by type.
"""


class Sg3rtError(Exception):
    """Base of every error caused by input (files, options, environment), not by a bug."""


class NetworkFileError(Sg3rtError):
    """A network file is missing, unreadable, corrupt, or holds something we refuse to load."""


class UnsupportedNetworkError(NetworkFileError):
    """The file is well formed but its architecture or options are not implemented."""


class UnsafePickleError(NetworkFileError):
    """A pickle asked for a global outside the allow-list; nothing in it was run."""


class InputError(Sg3rtError):
    """Tensor or option values with the wrong shape, range or type."""


class BackendUnavailableError(Sg3rtError):
    """An optional backend (TensorRT, ONNX Runtime CUDA, CUDA itself) is not installed or usable."""


class DeviceMemoryError(Sg3rtError):
    """Not even one image fits in the device's memory at this resolution and precision."""


class RuntimeClosedError(Sg3rtError):
    """A runtime was called after close(): its sessions, engines and buffers are gone."""


class OutputError(Sg3rtError):
    """An output could not be written (disk full, no permission, the encoder failed); nothing half-written is left."""
