"""Seeds -> latents and labels, exactly as the official tools make them, so seed 42 is the same face."""

from __future__ import annotations

import re

import numpy as np

from ..errors import InputError
from ..vocab import MAX_SEED  # noqa: F401  (re-exported)
from ..vocab import class_labels  # noqa: F401  (re-exported: seeds and labels go together)

MAX_SEEDS = 100_000  # a seed list longer than this is a typo (e.g. "0-1000000000")
_ITEM = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")  # "12" or "0-7"


def parse_seeds(text: str) -> list[int]:
    """'0-7,12,42' -> [0, 1, ..., 7, 12, 42]; ranges are inclusive, order and repeats are kept."""
    if text is None or not str(text).strip():
        raise InputError("empty seed list (example: --seeds 0-7,12,42)")
    seeds: list[int] = []
    for item in str(text).split(","):
        match = _ITEM.match(item)
        if match is None:
            raise InputError(f"bad seed {item.strip()!r} in {text!r}: use non-negative integers and ranges like 0-7")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise InputError(f"reversed seed range {item.strip()!r} in {text!r}: write {last}-{first}")
        if last > MAX_SEED:
            raise InputError(f"seed {last} is too large (seeds go from 0 to {MAX_SEED})")
        if len(seeds) + last - first + 1 > MAX_SEEDS:
            raise InputError(f"seed list {text!r} has more than {MAX_SEEDS} seeds")
        seeds.extend(range(first, last + 1))
    return seeds


def seed_z(seed: int, z_dim: int) -> np.ndarray:  # [z_dim] float64
    """The official latent of a seed: np.random.RandomState(seed).randn(z_dim)."""
    return np.random.RandomState(seed).randn(z_dim)


def seeds_to_z(seeds: list[int], z_dim: int) -> np.ndarray:  # [N, z_dim] float32
    return np.stack([seed_z(s, z_dim) for s in seeds]).astype(np.float32)
