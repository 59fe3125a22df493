"""An animation: what every frame shows (latent path per tile, motion, grid, timing), frame by frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import InputError
from .audio import AudioFeatures, AudioReaction, ReactiveFrames
from .edits import BoundEdits, check_stabilize, check_still, stabilize
from .grid import Grid
from .motion import Motion, check_motion
from .paths import LatentPath, PathSpec, Timeline


def check_save_w(spec: PathSpec) -> None:
    """--save-w writes one w per keyframe, which `--w-file` renders again: a path whose keyframes have no
    fixed ws is a one-line error before any work. A noise loop is seeded, not keyframed; a sweep's amount
    changes between the keyframes, so the ws saved there would not give the frames between them again
    (fixed edits and the stabilize anchor are the same shift in every frame: saved, they round-trip)."""
    if spec.kind == "noise":
        raise InputError("--path noise has no keyframes to save (a noise loop is seeded, not keyframed)")
    check_still(spec.edits, "--save-w saves fixed ws per keyframe, and a sweep's amount changes between them "
                            "(give a fixed AMOUNT, or save without --edit)")


class Animation:
    """Inputs of any frame: ws for every tile and the shared motion transform; composes tiles into frames."""

    def __init__(self, runtime: Any, seeds: list[int] | None, spec: PathSpec, fps: float = 30.0, *,
                 motion: Motion = Motion(), grid: Grid = Grid(1, 1), duration: float | None = None,
                 frames_per_transition: int | None = None, frames: int | None = None, ws: np.ndarray | None = None,
                 audio: AudioFeatures | None = None, reaction: AudioReaction | None = None):
        """Keyframes: `seeds`, or `ws` [N, num_ws, w_dim] (e.g. a w file; then seeds is None). A grid
        splits either into consecutive groups, one per tile. With `audio` (features at this fps) the video
        lasts as long as the track unless a length is given, and `reaction` (default AudioReaction())
        drives every frame."""
        check_motion(motion, runtime, None if audio is None else reaction or AudioReaction())
        if (seeds is None) == (ws is None):
            raise InputError("give the keyframes as seeds or as ws, not both" if ws is not None else "no keyframes")
        groups = grid.split_seeds(list(seeds) if ws is None else list(range(len(ws))))
        if reaction is not None and audio is None:
            raise InputError("an audio reaction needs the audio's features (audio=AudioFeatures.from_file(...))")
        if audio is not None and audio.fps != fps:
            raise InputError(f"the audio features were computed at {audio.fps:g} fps, the video runs at {fps:g}")
        if audio is not None and duration is None and frames_per_transition is None and frames is None:
            frames = audio.num_frames  # the video follows the track
        self.timeline = Timeline.build(len(groups[0]), spec.loops, fps, duration, frames_per_transition, frames)
        self.reactive = None
        if audio is not None:
            reaction = reaction or AudioReaction()
            pitch_ws = None
            if reaction.pitch > 0:
                pitch_seeds = reaction.pitch_seed_list(None if seeds is None else list(seeds)[0])
                pitch_ws = LatentPath(runtime, pitch_seeds, PathSpec("linear", "w", False, spec.psi, spec.cutoff,
                                                                     spec.class_idx), self.timeline).keyframe_ws()
            self.reactive = ReactiveFrames(runtime, reaction, audio, self.timeline, pitch_ws)
            self.timeline = self.reactive.timeline
        self.runtime, self.spec, self.motion, self.grid, self.fps = runtime, spec, motion, grid, fps
        if spec.stabilize:
            check_stabilize(runtime.kind)
        self.edits = BoundEdits(spec.edits, runtime.num_ws, runtime.w_dim, spec.loops)
        if ws is None:
            self.paths = [LatentPath(runtime, g, spec, self.timeline) for g in groups]
        else:
            self.paths = [LatentPath(runtime, None, spec, self.timeline, ws=np.asarray(ws)[g]) for g in groups]

    def keyframe_ws(self) -> torch.Tensor:  # [N, num_ws, w_dim] float32, in the order of the seeds/ws given
        """The ws every keyframe shows, tile after tile: mixing, fixed edits and the stabilize anchor included,
        as inputs() applies them, so that `--w-file` (without --edit/--stabilize) renders the keyframes again,
        as `image --save-w` saves them. What --save-w writes; check_save_w refuses what cannot round-trip."""
        check_save_w(self.spec)
        ws = torch.cat([p.keyframe_ws() for p in self.paths])  # [N, num_ws, w_dim]
        if self.edits:
            ws = self.edits.apply(ws)  # fixed amounts only (check_save_w)
        if self.spec.stabilize:
            ws = stabilize(ws, self.runtime.w_avg)
        return ws

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
        if self.reactive is not None:
            ws = self.reactive.ws(ws, frames)
        if self.edits:
            phase = np.repeat(self.timeline.phase(frames), len(self.paths))  # [F * tiles]
            ws = self.edits.apply(ws.reshape(-1, *ws.shape[2:]), phase).reshape(ws.shape)
        ws = ws.reshape(-1, *ws.shape[2:])
        if self.spec.stabilize:
            ws = stabilize(ws, self.runtime.w_avg)
        moves = self.reactive is not None and self.reactive.reaction.moves
        if not (self.motion.active or moves):
            return ws, None
        if self.reactive is not None:
            transforms = self.reactive.transforms(self.motion, frames, self.fps)  # [F, 3, 3]
        else:
            transforms = self.motion.transforms(frames, self.timeline.phase(frames), self.fps)  # [F, 3, 3]
        return ws, transforms.repeat_interleave(self.grid.tiles, dim=0)

    def compose(self, images: np.ndarray) -> np.ndarray:
        """[F * tiles, H, W, C] -> [F, rows * H, cols * W, C]."""
        return images if self.grid.tiles == 1 else self.grid.tile(images)
