"""What to render: seeds or w files -> latent paths -> motion -> frames through a runtime -> MP4/MOV/WebM/GIF/PNG.

Takes a runtime object (sg3rt.runtime.open_generator); never imports a backend.
"""

from .audio import AudioFeatures, AudioReaction, read_audio
from .directions import Directions, compute_directions, pca_directions, sefa_directions
from .edits import Edit, stabilize
from .grid import Grid
from .motion import Motion, Translation, check_motion
from .latents import load_ws, read_w_file, save_ws
from .paths import PATHS, LatentPath, PathSpec, StyleMix, Timeline, cubic_path, lerp_path, noise_loop, slerp_path
from .render import Progress, frame_batches, render, render_images, still_batches
from .scene import Animation
from .timeline import KeyTimeline, TimelineAnimation, load_timeline
from .seeds import class_labels, parse_seeds, seed_z, seeds_to_z
from .writers import (CODECS, DEFAULT_CRF, FrameWriter, check_writable, open_writer, output_codec, output_format,
                      takes_audio, write_png)

__all__ = [
    "Animation", "AudioFeatures", "AudioReaction", "CODECS", "DEFAULT_CRF", "Directions", "Edit", "FrameWriter", "Grid",
    "KeyTimeline", "LatentPath", "Motion", "PATHS", "PathSpec", "Progress", "TimelineAnimation", "compute_directions",
    "load_timeline", "pca_directions", "sefa_directions", "stabilize",
    "StyleMix", "Timeline", "Translation", "check_motion", "check_writable", "class_labels", "cubic_path",
    "frame_batches", "lerp_path", "load_ws", "noise_loop", "open_writer", "output_codec", "output_format",
    "parse_seeds", "read_audio", "read_w_file", "render", "render_images", "save_ws", "seed_z", "seeds_to_z", "slerp_path",
    "still_batches", "takes_audio", "write_png",
]
