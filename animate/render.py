"""The render loop: frames computed in batches on the runtime, encoded on a writer thread meanwhile.

The library yields `Progress` events and never prints; the CLI draws the bar. Computing batch k+1
overlaps encoding batch k (a bounded queue between the two keeps memory flat), so on a fast
runtime the video costs little more than the frames themselves. The same inputs give the same frames.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from ..errors import InputError
from ..networks import input_transform
from .edits import BoundEdits, Edit, check_stabilize, check_still
from .edits import stabilize as anchor_input
from .motion import Motion, check_motion
from .paths import StyleMix, apply_mixes, layer_range
from .scene import Animation
from .seeds import class_labels, seed_z, seeds_to_z
from .writers import FrameWriter

QUEUE_BATCHES = 2  # batches waiting for the encoder: enough to ride out hiccups, little memory
POLL_S = 0.1  # how often a blocked producer checks that the encoder is still alive


@dataclass(frozen=True)
class Progress:
    """After each batch: frames done (computed and handed to the encoder), of total, seconds so far."""

    done: int
    total: int
    elapsed: float

    @property
    def fps(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float:
        return (self.total - self.done) / self.fps if self.fps > 0 else float("inf")


def frame_batches(runtime: Any, animation: Animation, batch: int = 8) -> Iterator[np.ndarray]:
    """Compute only: uint8 frames [F, H, W, C] in order, about `batch` network images per runtime call."""
    if batch < 1:
        raise InputError(f"--batch must be at least 1, got {batch}")
    per_call = max(1, batch // animation.grid.tiles)  # whole grid frames per call
    for start in range(0, animation.num_frames, per_call):
        frames = np.arange(start, min(start + per_call, animation.num_frames))
        ws, transforms = animation.inputs(frames)
        yield animation.compose(runtime.frames(ws, transforms).numpy())


class _Encoder(threading.Thread):
    """Feeds a writer from a bounded queue; the producer learns of a failure on its next put."""

    def __init__(self, writer: FrameWriter, maxsize: int):
        super().__init__(name="sg3rt-encoder", daemon=True)
        self.writer = writer
        self.queue: queue.Queue = queue.Queue(maxsize)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while (frames := self.queue.get()) is not None:
                self.writer.write(frames)
        except BaseException as e:  # handed to the producer, which re-raises it in the main thread
            self.error = e

    def put(self, frames: np.ndarray | None) -> None:
        while True:
            self.check()
            try:
                self.queue.put(frames, timeout=POLL_S)
                return
            except queue.Full:
                pass

    def check(self) -> None:
        if self.error is not None:
            raise self.error
        if not self.is_alive() and self.ident is not None:
            raise RuntimeError("the encoder thread stopped")

    def finish(self) -> None:
        """Encode what is queued, then stop (also on interrupt: the frames so far reach the file)."""
        if self.is_alive():
            self.put(None)
            self.join()
        if self.error is not None:
            raise self.error


def render(runtime: Any, animation: Animation, writer: FrameWriter, batch: int = 8,
           queue_batches: int = QUEUE_BATCHES) -> Iterator[Progress]:
    """Render every frame of `animation` into `writer`, yielding Progress after each batch.

    A frame size the writer's encoder cannot take is an InputError before the first frame is computed.
    Close the generator (contextlib.closing) if you may stop early: the encoder thread then writes
    what is queued and stops; the writer itself is the caller's (close it with keep=True to keep
    a partial video).
    """
    total = animation.num_frames
    writer.check_frame_size(*animation.frame_size)  # before any frame: a size the encoder refuses is one line
    encoder = _Encoder(writer, queue_batches)
    encoder.start()
    start, done, finished = time.perf_counter(), 0, False
    try:
        for frames in frame_batches(runtime, animation, batch):
            encoder.put(frames)
            done += len(frames)
            if done < total:  # the last step is reported once, after the encoder has finished
                yield Progress(done, total, time.perf_counter() - start)
        encoder.finish()
        finished = True
        yield Progress(done, total, time.perf_counter() - start)
    finally:
        if not finished:
            try:
                encoder.finish()
            except Exception:
                pass  # the error that stopped the render is the one to report


def still_batches(runtime: Any, seeds: list[int] | None = None, *, ws: np.ndarray | None = None, psi: float = 1.0,
                  cutoff: int | None = None, class_idx: int | None = None, mixes: tuple[StyleMix, ...] = (),
                  rotate: float = 0.0, translate: tuple[float, float] = (0.0, 0.0), batch: int = 8,
                  edits: tuple[Edit, ...] = (), stabilize: bool = False,
                  ) -> Iterator[tuple[list[int], torch.Tensor, np.ndarray]]:
    """(keys, ws [B, num_ws, w_dim], uint8 images [B, H, W, C]) per batch, as the official gen_images.

    Keys are the seeds, or the indices of given `ws` [N, num_ws, w_dim] (a w file: used as they are, so
    psi and cutoff must stay off). The ws are the ones each image shows (mixing and edits included).
    `edits` (fixed amounts) shift w after mixing; `stabilize` sets ws[:, 0] = w_avg (StyleGAN3).
    """
    if batch < 1:
        raise InputError(f"--batch must be at least 1, got {batch}")
    if (seeds is None) == (ws is None):
        raise InputError("give the images as seeds or as ws, not both" if ws is not None else "no seeds or ws")
    if ws is not None and (psi != 1.0 or cutoff is not None):
        raise InputError("--psi/--cutoff truncate the mapping of seeds; a w file's ws are used as they are")
    transform = None
    if rotate != 0 or tuple(translate) != (0.0, 0.0):
        check_motion(Motion(rotate=rotate), runtime)
        transform = input_transform(rotate, tuple(translate))
    c1 = class_labels(runtime.c_dim, class_idx, 1)
    if stabilize:
        check_stabilize(runtime.kind)
    bound = BoundEdits(edits, runtime.num_ws, runtime.w_dim, loop=False)
    check_still(edits)

    def mapping(z: np.ndarray):
        c = None if c1 is None else np.repeat(c1, len(z), axis=0)
        return runtime.mapping(z, c, psi, cutoff)

    mix_ws = [(layer_range(m.layers, runtime.num_ws), mapping(seed_z(m.seed, runtime.z_dim)[None].astype(np.float32))[0])
              for m in mixes]
    keys = list(seeds) if ws is None else list(range(len(ws)))
    for i in range(0, len(keys), batch):
        group = keys[i:i + batch]
        if ws is None:
            group_ws = mapping(seeds_to_z(group, runtime.z_dim))
        else:
            group_ws = torch.as_tensor(np.asarray(ws[i:i + batch], dtype=np.float32), device=runtime.w_avg.device)
        group_ws = apply_mixes(group_ws, mix_ws)  # [B, num_ws, w_dim]
        if bound:
            group_ws = bound.apply(group_ws)
        if stabilize:
            group_ws = anchor_input(group_ws, runtime.w_avg)
        yield group, group_ws, runtime.frames(group_ws, transform).numpy()


def render_images(runtime: Any, seeds: list[int] | None = None, *, ws: np.ndarray | None = None, psi: float = 1.0,
                  cutoff: int | None = None, class_idx: int | None = None, mixes: tuple[StyleMix, ...] = (),
                  rotate: float = 0.0, translate: tuple[float, float] = (0.0, 0.0), batch: int = 8,
                  edits: tuple[Edit, ...] = (), stabilize: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """(seed, uint8 image [H, W, C]) for each seed, as the official gen_images (same z, labels, transform);
    with `ws` [N, num_ws, w_dim] instead of seeds: (index, image) for each w."""
    for keys, _, images in still_batches(runtime, seeds, ws=ws, psi=psi, cutoff=cutoff, class_idx=class_idx,
                                         mixes=mixes, rotate=rotate, translate=translate, batch=batch,
                                         edits=edits, stabilize=stabilize):
        yield from zip(keys, images)
