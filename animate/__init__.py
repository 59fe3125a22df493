"""What to render: seeds -> latent paths -> motion -> frames through a runtime -> MP4/PNG/GIF.

Takes a runtime object (sg3rt.runtime.open_generator); never imports a backend.
"""

from .directions import Directions, compute_directions, pca_directions, sefa_directions
from .edits import Edit, stabilize
from .grid import Grid
from .motion import Motion, Translation, check_motion
from .paths import PATHS, LatentPath, PathSpec, StyleMix, Timeline, cubic_path, lerp_path, noise_loop, slerp_path
from .render import Progress, frame_batches, render, render_images
from .scene import Animation
from .seeds import class_labels, parse_seeds, seed_z, seeds_to_z
from .writers import DEFAULT_CRF, FrameWriter, check_writable, open_writer, output_format, write_png

__all__ = [
    "Animation", "DEFAULT_CRF", "Directions", "Edit", "compute_directions", "pca_directions", "sefa_directions",
    "stabilize", "FrameWriter", "Grid", "LatentPath", "Motion", "PATHS", "PathSpec", "Progress",
    "StyleMix", "Timeline", "Translation", "check_motion", "check_writable", "class_labels", "cubic_path",
    "frame_batches", "lerp_path", "noise_loop", "open_writer", "output_format", "parse_seeds", "render",
    "render_images", "seed_z", "seeds_to_z", "slerp_path", "write_png",
]
