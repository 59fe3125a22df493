"""What a live frame shows: a controls snapshot plus the walk and motion clocks -> (ws, transform).

The same building blocks as `render` (official seed latents, looping Catmull-Rom in W, noise loops
in Z, style mixing, the official input transform), evaluated for one frame at a time.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..animate.edits import Edit, stabilize
from ..animate.motion import Translation
from ..animate.paths import apply_mixes, cubic_path, noise_loop
from ..animate.seeds import class_labels, seed_z
from ..networks import input_transform
from .audio import AudioSource, AudioState
from .controls import Controls

NOISE_LOOP_TRANSITIONS = 4.0  # a noise loop lasts as long as this many seed-to-seed transitions
W_CACHE_SIZE = 512  # mapped seed latents kept (per psi, cutoff and class)


@dataclass(frozen=True)
class Clocks:
    """Where the animation stands: walk position (in transitions), motion time and audio time (seconds since
    playback start); all stop on pause."""

    walk: float = 0.0
    motion: float = 0.0
    audio: float = 0.0

    def advance(self, controls: Controls, dt: float, audio: AudioSource | None = None) -> "Clocks":
        """dt seconds later; with a sound track the walk runs at the music's rate at the current audio time."""
        if controls.paused:
            return self
        rate = audio.walk_rate(self.audio) if audio is not None else 1.0
        return Clocks(self.walk + controls.speed * rate * dt, self.motion + dt, self.audio + dt)


class LiveScene:
    """ws [1, num_ws, w_dim] and transform [1, 3, 3] | None for one snapshot at one clock reading."""

    def __init__(self, runtime: Any, edits: tuple[Edit, ...] = (), audio: AudioSource | None = None):
        """edits: editing directions (fixed-amount --edit specs); Controls.edits holds their live amounts.
        audio: a sound track whose reactions (pulse, loudness, pitch, rotate, translate) apply at clocks.audio."""
        self.runtime = runtime
        self.audio = audio
        self.edit_offsets = [torch.from_numpy(e.offset(runtime.num_ws, runtime.w_dim)).to(runtime.w_avg.device,
                                                                                        torch.float32)
                             for e in edits]  # each [num_ws, w_dim]: the shift per unit amount
        self._w: OrderedDict[tuple, torch.Tensor] = OrderedDict()  # (seed, psi, cutoff, class) -> [num_ws, w_dim]

    def _map(self, z: np.ndarray, c: Controls) -> torch.Tensor:  # [B, z_dim] -> [B, num_ws, w_dim]
        labels = class_labels(self.runtime.c_dim, c.class_idx, len(z))
        return self.runtime.mapping(z.astype(np.float32), labels, c.psi, c.cutoff)

    def seed_w(self, seed: int, c: Controls) -> torch.Tensor:  # [num_ws, w_dim], cached
        key = (seed, c.psi, c.cutoff, c.class_idx)
        w = self._w.get(key)
        if w is None:
            w = self._map(seed_z(seed, self.runtime.z_dim)[None], c)[0]
            self._w[key] = w
            if len(self._w) > W_CACHE_SIZE:
                self._w.popitem(last=False)
        else:
            self._w.move_to_end(key)
        return w

    def ws(self, c: Controls, clocks: Clocks) -> torch.Tensor:  # [1, num_ws, w_dim]
        if c.walk == "noise":
            z = noise_loop(c.seed, self.runtime.z_dim, np.array([clocks.walk / NOISE_LOOP_TRANSITIONS]))
            ws = self._map(z, c)
        elif c.walk == "cubic" and len(c.seeds) > 1:
            keys = torch.stack([self.seed_w(s, c) for s in c.seeds]).double().cpu().numpy()  # [K, num_ws, w_dim]
            w = cubic_path(keys, np.array([clocks.walk]), loop=True)  # [1, num_ws, w_dim]
            ws = torch.from_numpy(w.astype(np.float32)).to(self.runtime.w_avg.device)
        else:
            ws = self.seed_w(c.seeds[0] if c.walk == "cubic" else c.seed, c)[None]
        if c.mix_seed is not None:
            ws = apply_mixes(ws, [((c.mix_from, c.mix_to + 1), self.seed_w(c.mix_seed, c))])
        for amount, offset in zip(c.edits, self.edit_offsets):
            if amount:
                ws = ws + amount * offset  # [1, num_ws, w_dim]: after mixing, as render's --edit
        if self.audio is not None:
            ws = self._react(ws, c, self.audio.at(clocks.audio))
        if c.stabilize:
            ws = stabilize(ws, self.runtime.w_avg)  # as render's --stabilize: ws[:, 0] = w_avg
        return ws

    def _react(self, ws: torch.Tensor, c: Controls, a: AudioState) -> torch.Tensor:  # [1, num_ws, w_dim] -> same
        """The sound track's pitch blend and pulse, as animate.audio.ReactiveFrames applies them offline."""
        if a.pitch_mix > 0:
            first = c.seeds[0] if c.walk == "cubic" else c.seed
            pitch_ws = torch.stack([self.seed_w(s, c) for s in self.audio.reaction.pitch_seed_list(first)])  # [12, num_ws, w_dim]
            blend = torch.einsum("k,kld->ld", torch.as_tensor(a.pitch_weights).to(pitch_ws), pitch_ws)
            ws = ws * (1 - a.pitch_mix) + blend[None] * a.pitch_mix
        if a.scale != 1.0:
            w_avg = self.runtime.w_avg.to(ws)
            ws = w_avg + a.scale * (ws - w_avg)
        return ws

    def transform(self, c: Controls, clocks: Clocks) -> torch.Tensor | None:  # [1, 3, 3] | None
        if not self.runtime.is_stylegan3:
            return None
        a = self.audio.at(clocks.audio) if self.audio is not None else None
        angle = c.rotate + c.rotate_speed * clocks.motion + (a.rotation if a else 0.0)
        x, y = c.tx, c.ty
        if c.translate_anim != "off":
            dx, dy = Translation(c.translate_anim, c.translate_amplitude).offsets(
                np.array([c.translate_speed * clocks.motion]))[0] * (a.translate_gain if a else 1.0)
            x, y = x + dx, y + dy
        if angle == 0 and x == 0 and y == 0:
            return None
        return input_transform(float(angle), (float(x), float(y)))[None]

    def inputs(self, c: Controls, clocks: Clocks) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.ws(c, clocks), self.transform(c, clocks)
