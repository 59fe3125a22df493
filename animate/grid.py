"""Grids: several independent paths rendered side by side in one video."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

MAX_TILES = 256  # a grid bigger than this is a typo


@dataclass(frozen=True)
class Grid:
    cols: int
    rows: int

    @classmethod
    def parse(cls, text: str | None) -> "Grid":
        """'4x2' -> 4 columns, 2 rows; None -> a single tile."""
        if text is None:
            return cls(1, 1)
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
        if m is None or int(m.group(1)) < 1 or int(m.group(2)) < 1:
            raise InputError(f"bad --grid {text!r}: use COLSxROWS with positive numbers, e.g. 4x2")
        grid = cls(int(m.group(1)), int(m.group(2)))
        if grid.tiles > MAX_TILES:
            raise InputError(f"--grid {text} has {grid.tiles} tiles; at most {MAX_TILES}")
        return grid

    @property
    def tiles(self) -> int:
        return self.cols * self.rows

    def split_seeds(self, seeds: list[int]) -> list[list[int]]:
        """Tile i (row-major) gets the i-th consecutive group of len(seeds) / tiles seeds, as the official gen_video."""
        if len(seeds) % self.tiles:
            raise InputError(f"--grid {self.cols}x{self.rows} needs a multiple of {self.tiles} seeds "
                             f"(one group per tile), got {len(seeds)}")
        k = len(seeds) // self.tiles
        return [seeds[i * k:(i + 1) * k] for i in range(self.tiles)]

    def tile(self, images: np.ndarray) -> np.ndarray:
        """[F * tiles, H, W, C] (frame-major) -> [F, rows * H, cols * W, C]."""
        n, h, w, c = images.shape
        if n % self.tiles:
            raise ValueError(f"{n} images do not fill whole {self.cols}x{self.rows} grids")
        x = images.reshape(n // self.tiles, self.rows, self.cols, h, w, c)
        return x.transpose(0, 1, 3, 2, 4, 5).reshape(n // self.tiles, self.rows * h, self.cols * w, c)
