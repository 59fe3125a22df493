"""One interface over every backend: mapping(z, c) -> ws, synthesis(ws, transforms) -> images.

A runtime owns a network on a device (PyTorch, an ONNX Runtime session, a TensorRT engine): it is
loaded once when built, runs many calls, and refuses calls after close(). The mapping backends
compute untruncated ws; truncation and the uint8 conversion are done here, once, in torch, on the
runtime's device. Inputs may be torch tensors or numpy arrays.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from ..errors import InputError, RuntimeClosedError
from ..export.contract import NOISE_MODES as EXPORT_NOISE_MODES
from ..networks import to_uint8_frames
from ..networks.mapping import truncate
from ..networks.stylegan2 import NOISE_MODES
from ..vocab import batch_transforms, is_stylegan3

DEFAULT_NOISE_MODE = "const"  # StyleGAN2 noise of a call that names none, where the network has none baked in


def as_tensor(x: Any, device: torch.device, name: str) -> torch.Tensor:
    """numpy or torch -> float32 tensor on `device` (the runtime's own); host values checked finite."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}")
    check_finite(x, name)
    return x.to(device=device, dtype=torch.float32)


def check_finite(x: torch.Tensor, name: str) -> None:
    """A NaN or infinity in a latent or transform renders black or garbage frames without a word: refuse it.
    Host tensors only (what files, paths and the CLI produce): checking a GPU tensor would wait for the GPU."""
    if x.device.type != "cpu" or not x.is_floating_point() or x.numel() == 0:
        return
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = x.numel() - int(finite.sum())
        raise InputError(f"{name} holds {bad} NaN or infinite value{'s' if bad > 1 else ''} (of {x.numel()}): "
                         f"{name} must be finite numbers")


class Runtime(ABC):
    """A generator behind a backend. Use as a context manager or call close()."""

    backend: str = "?"  # registry name, e.g. "torch", "onnxruntime", "tensorrt"

    def __init__(self, info: dict[str, Any], w_avg: torch.Tensor, device: torch.device, precision: str):
        self.kind: str = info["kind"]
        self.z_dim: int = int(info["z_dim"])
        self.c_dim: int = int(info["c_dim"])
        self.w_dim: int = int(info["w_dim"])
        self.num_ws: int = int(info["num_ws"])
        self.img_resolution: int = int(info["img_resolution"])
        self.img_channels: int = int(info["img_channels"])
        # Images are width x height: the network's R x R, or a StyleGAN3 canvas (G.with_canvas, export --size).
        self.width: int = int(info.get("width", self.img_resolution))
        self.height: int = int(info.get("height", self.img_resolution))
        self.device = torch.device(device)
        self.precision = precision
        self.w_avg = w_avg.to(self.device, torch.float32)  # [w_dim]
        # StyleGAN2 noise baked into an exported graph: the default of every call, and the only mode it runs
        # (None: the network runs any noise mode)
        self.baked_noise_mode: str | None = None if self.is_stylegan3 else info.get("noise_mode")
        self.closed = False

    @property
    def is_stylegan3(self) -> bool:
        return is_stylegan3(self.kind)

    @property
    def canvas(self) -> tuple[int, int] | None:
        """(width, height) when images are not the network's own R x R, else None."""
        r = self.img_resolution
        return None if (self.width, self.height) == (r, r) else (self.width, self.height)

    # -- what a backend implements ---------------------------------------------------------------
    @abstractmethod
    def _mapping(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """[B, z_dim] (+ [B, c_dim]) -> untruncated [B, num_ws, w_dim] on self.device."""

    @abstractmethod
    def _synthesis(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        """[B, num_ws, w_dim] (+ [B, 3, 3]) -> [B, C, height, width] float32 on self.device."""

    def _frames(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        """Checked inputs -> uint8 [B, H, W, C] on self.device; backends with a fused graph override it."""
        return to_uint8_frames(self._synthesis(ws, transforms, noise_mode))

    def _release(self) -> None:
        """Free sessions, engines and device buffers (called once, by close())."""

    # -- the shared interface --------------------------------------------------------------------
    def close(self) -> None:
        """Release the backend; later calls are a RuntimeClosedError. Idempotent."""
        if not self.closed:
            self.closed = True
            self._release()

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeClosedError(f"this {self.backend} runtime is closed: open a new one with open_generator")

    def mapping(self, z: Any, c: Any = None, truncation_psi: float = 1.0, truncation_cutoff: int | None = None) -> torch.Tensor:
        """z [B, z_dim] (+ one-hot c [B, c_dim]) -> truncated ws [B, num_ws, w_dim] on self.device."""
        self._check_open()
        z = as_tensor(z, self.device, "z")
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise InputError(f"z must have shape [B, {self.z_dim}], got {list(z.shape)}")
        if self.c_dim > 0:
            if c is None:
                raise InputError(f"this network is conditional: pass a class label c of width {self.c_dim}")
            c = as_tensor(c, self.device, "c")
            if c.shape != (z.shape[0], self.c_dim):
                raise InputError(f"c must have shape [{z.shape[0]}, {self.c_dim}], got {list(c.shape)}")
        else:
            if c is not None and as_tensor(c, self.device, "c").numel() > 0:  # [B, 0] is no label, as None
                raise InputError("this network is unconditional (c_dim 0): pass no class label c")
            c = None
        return truncate(self._mapping(z, c), self.w_avg, truncation_psi, truncation_cutoff)

    def _check_synthesis_inputs(self, ws: Any, transforms: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ws -> [B, num_ws, w_dim], transforms -> None or [B, 3, 3], on self.device."""
        self._check_open()
        ws = as_tensor(ws, self.device, "ws")
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise InputError(f"ws must have shape [B, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if transforms is not None:
            if isinstance(transforms, (np.ndarray, torch.Tensor)):
                check_finite(torch.as_tensor(transforms), "transforms")
            transforms = batch_transforms(transforms, ws.shape[0], self.is_stylegan3, self.device)
        return ws, transforms

    def _noise_mode(self, noise_mode: str | None) -> str:
        """The call's StyleGAN2 noise: None means the network's own (what an export holds, else const); an
        export runs only the noise baked into it, and the error names the choices that exist."""
        if self.baked_noise_mode is None:
            return DEFAULT_NOISE_MODE if noise_mode is None else noise_mode
        if noise_mode is None or noise_mode == self.baked_noise_mode:
            return self.baked_noise_mode
        where = getattr(self, "export_dir", "this export")
        baked = f"{where} has noise_mode={self.baked_noise_mode!r} baked in"
        if noise_mode in EXPORT_NOISE_MODES:
            raise InputError(f"{baked}; re-export with `sg3rt export --noise {noise_mode}` for noise_mode={noise_mode!r}")
        if noise_mode in NOISE_MODES:
            raise InputError(f"{baked}; noise_mode={noise_mode!r} does not export (exports hold "
                             f"{' or '.join(EXPORT_NOISE_MODES)}): open the network file with the torch backend")
        raise InputError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")

    def synthesis(self, ws: Any, transforms: Any = None, noise_mode: str | None = None) -> torch.Tensor:
        """ws [B, num_ws, w_dim] (+ transforms [3, 3] or [B, 3, 3]) -> float32 images [B, C, H, W] on self.device;
        noise_mode (StyleGAN2): const, random or none; None = the export's own, const for a network file."""
        ws, transforms = self._check_synthesis_inputs(ws, transforms)
        return self._synthesis(ws, transforms, self._noise_mode(noise_mode))

    def frames(self, ws: Any, transforms: Any = None, noise_mode: str | None = None) -> Any:
        """uint8 frames [B, H, W, C] on the CPU, quantised on the runtime's device before the copy:
        a numpy array for numpy ws (what image writers take), a torch tensor for torch ws."""
        as_numpy = isinstance(ws, np.ndarray)
        ws, transforms = self._check_synthesis_inputs(ws, transforms)
        frames = self._frames(ws, transforms, self._noise_mode(noise_mode)).cpu()
        return frames.numpy() if as_numpy else frames

    def __call__(self, z: Any, c: Any = None, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                 transforms: Any = None, noise_mode: str | None = None) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff)
        return self.synthesis(ws, transforms, noise_mode)

    def __enter__(self) -> "Runtime":
        self._check_open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        size = f"{self.img_resolution}px" if self.canvas is None else f"{self.width}x{self.height}"
        return (f"<{type(self).__name__} {self.kind} {size} backend={self.backend} "
                f"device={self.device} precision={self.precision}{state}>")
