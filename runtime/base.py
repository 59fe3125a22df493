"""One interface over every backend: mapping(z, c) -> ws, synthesis(ws, transforms) -> images.

A runtime owns a network on a device (PyTorch, an ONNX Runtime session, a TensorRT engine). The
mapping backends compute untruncated ws; truncation and the uint8 conversion are done here, once,
in torch, on the runtime's device. Inputs may be torch tensors or numpy arrays.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..networks.mapping import truncate


def as_tensor(x: Any, device: torch.device, name: str) -> torch.Tensor:
    """numpy or torch -> float32 tensor on `device` (the runtime's own)."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}")
    return x.to(device=device, dtype=torch.float32)


def to_uint8_frames(img: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] float in about [-1, 1] -> [B, H, W, C] uint8, as the official tools quantise."""
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)


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
        self.device = torch.device(device)
        self.precision = precision
        self.w_avg = w_avg.to(self.device, torch.float32)  # [w_dim]

    @property
    def is_stylegan3(self) -> bool:
        return self.kind != "stylegan2"

    # -- what a backend implements ---------------------------------------------------------------
    @abstractmethod
    def _mapping(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """[B, z_dim] (+ [B, c_dim]) -> untruncated [B, num_ws, w_dim] on self.device."""

    @abstractmethod
    def _synthesis(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        """[B, num_ws, w_dim] (+ [B, 3, 3]) -> [B, C, H, W] float32 on self.device."""

    def close(self) -> None:
        """Release sessions, engines and device buffers."""

    # -- the shared interface --------------------------------------------------------------------
    def mapping(self, z: Any, c: Any = None, truncation_psi: float = 1.0, truncation_cutoff: int | None = None) -> torch.Tensor:
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
            c = None
        return truncate(self._mapping(z, c), self.w_avg, truncation_psi, truncation_cutoff)

    def _frames(self, ws: torch.Tensor, transforms: torch.Tensor | None, noise_mode: str) -> torch.Tensor:
        """Checked inputs -> uint8 [B, H, W, C] on self.device; backends with a fused graph override it."""
        return to_uint8_frames(self._synthesis(ws, transforms, noise_mode))

    def _check_synthesis_inputs(self, ws: Any, transforms: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ws -> [B, num_ws, w_dim], transforms -> None or [B, 3, 3], on self.device."""
        ws = as_tensor(ws, self.device, "ws")
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise InputError(f"ws must have shape [B, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if transforms is not None:
            if not self.is_stylegan3:
                raise InputError("StyleGAN2 networks have no input transform: rotation/translation need StyleGAN3")
            transforms = as_tensor(transforms, self.device, "transforms")
            if transforms.shape == (3, 3):
                transforms = transforms.unsqueeze(0).expand(ws.shape[0], 3, 3)
            if transforms.shape != (ws.shape[0], 3, 3):
                raise InputError(f"transforms must have shape [3, 3] or [{ws.shape[0]}, 3, 3], got {list(transforms.shape)}")
        return ws, transforms

    def synthesis(self, ws: Any, transforms: Any = None, noise_mode: str = "const") -> torch.Tensor:
        ws, transforms = self._check_synthesis_inputs(ws, transforms)
        return self._synthesis(ws, transforms, noise_mode)

    def frames(self, ws: Any, transforms: Any = None, noise_mode: str = "const") -> torch.Tensor:
        """uint8 frames [B, H, W, C] on the CPU, quantised on the runtime's device before the copy."""
        ws, transforms = self._check_synthesis_inputs(ws, transforms)
        return self._frames(ws, transforms, noise_mode).cpu()

    def __call__(self, z: Any, c: Any = None, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                 transforms: Any = None, noise_mode: str = "const") -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff)
        return self.synthesis(ws, transforms, noise_mode)

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.kind} {self.img_resolution}px backend={self.backend} "
                f"device={self.device} precision={self.precision}>")
