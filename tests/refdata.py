"""Reference data of the official implementation (tests/data, copied from ../shared/reference)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

REFERENCES = ["sg3t_64_cond", "sg3r_64", "sg3r_256", "sg2_64"]  # official networks with outputs
STYLEGAN3_REFERENCES = ["sg3t_64_cond", "sg3r_64", "sg3r_256"]
PARITY_TOL = 1e-4  # max abs error allowed against the official float32 CPU outputs
_TESTS = Path(__file__).resolve().parent


def reference_file(name: str) -> Path:
    """A reference file from tests/data, else from ../shared/reference beside the checkout."""
    for folder in (_TESTS / "data", _TESTS.parent.parent / "shared" / "reference"):
        if (folder / name).is_file():
            return folder / name
    pytest.skip(f"reference file {name} is in neither tests/data nor ../shared/reference")


def reference_io(name: str) -> dict[str, torch.Tensor]:
    """Inputs and official outputs of one reference network, as float32 tensors."""
    return {k: torch.from_numpy(v) for k, v in np.load(reference_file(f"{name}_io.npz")).items()}


def reference_config(name: str) -> dict:
    return json.loads(reference_file(f"{name}.json").read_text())


def labels(io: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The c input of a reference, or None for unconditional networks."""
    return io["c"] if io["c"].shape[1] > 0 else None
