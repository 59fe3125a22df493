"""The vocabulary every part of sg3rt shares: network kinds, precisions, backends, class labels and the
input-transform shape rule, each defined once.

Plain Python at import time (torch is imported inside the functions that need it), so the CLI can
take its choices from here and answer `--help` without loading torch.
"""

from __future__ import annotations

from typing import Any

from .errors import BackendUnavailableError, InputError

KINDS = ("stylegan3-r", "stylegan3-t", "stylegan2")  # architectures sg3rt implements
STYLEGAN2 = "stylegan2"  # the one kind without an input transform (no rotation or translation)
PRECISIONS = ("fp32", "fp16")  # compute precisions of ONNX exports and ONNX Runtime
TORCH_PRECISIONS = ("fp32", "fp16", "bf16")  # PyTorch also runs the fp16-eligible layers in bfloat16
ENGINE_PRECISIONS = ("fp32", "fp16", "bf16")  # any runtime's precision (TensorRT engines and PyTorch take bf16)
FIR_IMPLS = ("auto", "fused", "matmul", "conv")  # PyTorch filters: fused Triton kernel (CUDA), FIR as matmuls or convs
BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")  # runtime backends; auto picks by device and measurements
EXPORT_TARGETS = ("portable", "onnxruntime-cpu", "onnxruntime-cuda", "tensorrt")  # runtimes an export's ops are chosen for
DEFAULT_EXPORT_TARGET = "portable"  # the plain form every ONNX runtime runs (and the GPU runtimes run fastest, so far)
CODECS = ("h264", "prores", "vp9", "gif", "png",  # video codecs of `render` (png = a folder of PNG frames);
          "h264-nvenc", "hevc-nvenc")  # H.264 / HEVC on an NVIDIA GPU's encoder block (NVENC)
DEVICES_HELP = "auto, cpu, cuda or cuda:N"  # what --device takes
DEVICE_TYPES = ("cpu", "cuda")  # torch device types sg3rt runs on (torch.device also takes mps, meta, xla...)
NO_TRANSFORM = "StyleGAN2 has no input transform (rotation and translation need a StyleGAN3 network)"


def is_stylegan3(kind: str) -> bool:
    """StyleGAN3 (R or T): the kinds that take an input transform."""
    return kind != STYLEGAN2


def parse_device(device: Any) -> Any:  # torch.device
    """'auto' -> cuda when torch sees a GPU, else cpu; else cpu, cuda or cuda:N as a torch.device.

    torch.device accepts every type torch has a name for (mps, meta, xla...), even ones this build
    cannot use and sg3rt does not run on: those are a one-line InputError here, not a torch error later.
    """
    import torch

    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in DEVICE_TYPES:
        raise InputError(f"unknown device {str(device)!r} (use {DEVICES_HELP})")
    return dev


def torch_device(device: Any) -> Any:  # torch.device
    """parse_device, checked against the GPUs torch sees: a BackendUnavailableError before any tensor
    moves, instead of torch's AssertionError (no CUDA build) or invalid-ordinal error (cuda:N too high)."""
    import torch

    dev = parse_device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailableError(f"device {str(device)!r} requested, but torch sees no CUDA GPU "
                                          "(torch.cuda.is_available() is False)")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise BackendUnavailableError(f"device {str(device)!r} requested, but torch sees {count} CUDA "
                                          f"GPU{'s' if count > 1 else ''} (cuda:0..cuda:{count - 1})")
    return dev


def check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    """`value` if it is one of `choices`, else a one-line InputError naming them."""
    if value not in choices:
        raise InputError(f"unknown {what} {value!r} (choose from {', '.join(choices)})")
    return value


def check_precision(precision: str, choices: tuple[str, ...] = PRECISIONS, who: str = "") -> str:
    if precision not in choices:
        whose = f" for {who}" if who else ""
        raise InputError(f"precision{whose} must be one of {', '.join(choices)}, got {precision!r}")
    return precision


def one_hot(indices: Any, c_dim: int) -> Any:
    """Class indices [B] (numpy or torch ints) -> one-hot float32 labels [B, c_dim] of the same library."""
    import numpy as np

    if isinstance(indices, np.ndarray) or np.isscalar(indices) or isinstance(indices, (list, tuple)):
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and not (0 <= idx.min() and idx.max() < c_dim):
            raise InputError(f"class index out of range: this network has classes 0..{c_dim - 1}")
        labels = np.zeros([idx.size, c_dim], dtype=np.float32)
        labels[np.arange(idx.size), idx] = 1
        return labels
    import torch

    return torch.nn.functional.one_hot(indices.long(), c_dim).to(torch.float32)


def class_labels(c_dim: int, class_idx: int | None, count: int) -> Any:  # [count, c_dim] numpy | None
    """The official --class: one-hot labels for a conditional network, None for an unconditional one."""
    if c_dim == 0:
        if class_idx is not None:
            raise InputError(f"--class {class_idx} given, but this network is unconditional (it has no classes)")
        return None
    if class_idx is None:
        raise InputError(f"this network is conditional ({c_dim} classes): pick one with --class 0..{c_dim - 1}")
    if not 0 <= class_idx < c_dim:
        raise InputError(f"--class {class_idx} is out of range: this network has classes 0..{c_dim - 1}")
    return one_hot([class_idx] * count, c_dim)


MAX_SEED = 2**32 - 1  # np.random.RandomState accepts seeds in [0, 2**32)


def check_seed(seed: Any, name: str = "seed", high: int = MAX_SEED) -> int:
    """An integer seed in 0..high (RandomState's range; a caller that also uses seed + 1 passes MAX_SEED - 1)."""
    import numbers

    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= high:
        raise InputError(f"{name} must be an integer from 0 to {high}, got {seed!r}")
    return int(seed)


def batch_transforms(transforms: Any, batch: Any, stylegan3: bool = True, device: Any = None) -> Any:
    """The input-transform rule: None (identity), [3, 3] (shared) or [B, 3, 3] -> float32 [B, 3, 3] torch.

    `batch` may be a traced size (ws.shape[0]) so that exports keep a dynamic batch. StyleGAN2 takes no
    transform; None stays None for it.
    """
    import numpy as np
    import torch

    if transforms is None:
        if not stylegan3:
            return None
        return torch.eye(3, dtype=torch.float32, device=device).unsqueeze(0).expand(batch, 3, 3)
    if not stylegan3:
        raise InputError(NO_TRANSFORM)
    if isinstance(transforms, np.ndarray):
        transforms = torch.from_numpy(transforms)
    if not isinstance(transforms, torch.Tensor):
        raise InputError(f"transforms must be a torch tensor or numpy array, got {type(transforms).__name__}")
    transforms = transforms.to(device=device, dtype=torch.float32)
    if tuple(transforms.shape) == (3, 3):
        return transforms.unsqueeze(0).expand(batch, 3, 3)
    if transforms.ndim != 3 or tuple(transforms.shape[1:]) != (3, 3) or (
            not tracing() and int(transforms.shape[0]) != batch):
        raise InputError(f"transforms must have shape [3, 3] or [{batch}, 3, 3], got {list(transforms.shape)}")
    return transforms


def tracing() -> bool:
    """Inside a trace for ONNX export: the batch is symbolic (shape checks must not record Python ints) and
    the plain, export-friendly forms are what must be traced."""
    import torch

    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


MAX_SIZE = 16384  # pixels per side of a canvas (--size): beyond any video format, and a typo guard


def parse_size(text: Any) -> tuple[int, int]:
    """'1920x1080' (or a (width, height) pair) -> (1920, 1080); a one-line InputError otherwise.

    Checks only the form and range: whether a network can render the size (StyleGAN3, parity against
    its resolution) is the network's check, and even sizes for H.264 the writer's.
    """
    if isinstance(text, (tuple, list)) and len(text) == 2:
        parts = [str(v) for v in text]
    elif isinstance(text, str) and text.lower().count("x") == 1:
        parts = text.lower().split("x")
    else:
        raise InputError(f"size must be WIDTHxHEIGHT in pixels, e.g. 1920x1080, got {text!r}")
    try:
        width, height = (int(p.strip()) for p in parts)
    except ValueError:
        raise InputError(f"size must be WIDTHxHEIGHT in whole pixels, e.g. 1920x1080, got {text!r}") from None
    for name, n in (("width", width), ("height", height)):
        if not 0 < n <= MAX_SIZE:
            raise InputError(f"size {name} must be between 1 and {MAX_SIZE} pixels, got {n}")
    return width, height
