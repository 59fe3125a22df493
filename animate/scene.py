"""An animation: what every frame shows (latent path per tile, motion, grid, timing), frame by frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import InputError
from .edits import BoundEdits, check_stabilize, stabilize
from .grid import Grid
from .motion import Motion, check_motion
from .paths import LatentPath, PathSpec, Timeline


class Animation:
    """Inputs of any frame: ws for every tile and the shared motion transform; composes tiles into frames."""

    def __init__(self, runtime: Any, seeds: list[int] | None, spec: PathSpec, fps: float = 30.0, *,
                 motion: Motion = Motion(), grid: Grid = Grid(1, 1), duration: float | None = None,
                 frames_per_transition: int | None = None, frames: int | None = None, ws: np.ndarray | None = None):
        """Keyframes: `seeds`, or `ws` [N, num_ws, w_dim] (e.g. a w file; then seeds is None). A grid
        splits either into consecutive groups, one per tile."""
        check_motion(motion, runtime)
        if (seeds is None) == (ws is None):
            raise InputError("give the keyframes as seeds or as ws, not both" if ws is not None else "no keyframes")
        groups = grid.split_seeds(list(seeds) if ws is None else list(range(len(ws))))
        self.timeline = Timeline.build(len(groups[0]), spec.loops, fps, duration, frames_per_transition, frames)
        self.runtime, self.spec, self.motion, self.grid, self.fps = runtime, spec, motion, grid, fps
        if spec.stabilize:
            check_stabilize(runtime.kind)
        self.edits = BoundEdits(spec.edits, runtime.num_ws, runtime.w_dim, spec.loops)
        if ws is None:
            self.paths = [LatentPath(runtime, g, spec, self.timeline) for g in groups]
        else:
            self.paths = [LatentPath(runtime, None, spec, self.timeline, ws=np.asarray(ws)[g]) for g in groups]

    def keyframe_ws(self) -> torch.Tensor:  # [N, num_ws, w_dim] float32, in the order of the seeds/ws given
        """The ws every keyframe shows (mixing included), tile after tile: what --save-w writes."""
        return torch.cat([p.keyframe_ws() for p in self.paths])

    @property
    def num_frames(self) -> int:
        return self.timeline.num_frames

    @property
    def frame_size(self) -> tuple[int, int]:  # (H, W) of a composed frame
        return self.grid.rows * self.runtime.height, self.grid.cols * self.runtime.width

    def inputs(self, frames: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        """frames [F] -> ws [F * tiles, num_ws, w_dim] (frame-major) and transforms [F * tiles, 3, 3] or None."""
        frames = np.asarray(frames, dtype=np.int64)
        ws = torch.stack([p.ws(frames) for p in self.paths], dim=1)  # [F, tiles, num_ws, w_dim]
        if self.edits:
            phase = np.repeat(self.timeline.phase(frames), len(self.paths))  # [F * tiles]
            ws = self.edits.apply(ws.reshape(-1, *ws.shape[2:]), phase).reshape(ws.shape)
        ws = ws.reshape(-1, *ws.shape[2:])
        if self.spec.stabilize:
            ws = stabilize(ws, self.runtime.w_avg)
        if not self.motion.active:
            return ws, None
        transforms = self.motion.transforms(frames, self.timeline.phase(frames), self.fps)  # [F, 3, 3]
        return ws, transforms.repeat_interleave(self.grid.tiles, dim=0)

    def compose(self, images: np.ndarray) -> np.ndarray:
        """[F * tiles, H, W, C] -> [F, rows * H, cols * W, C]."""
        return images if self.grid.tiles == 1 else self.grid.tile(images)
