"""Frame writers: MP4 (H.264), MOV (ProRes 422 HQ), WebM (VP9), GIF (all via imageio-ffmpeg), PNG sequence;
H.264 / HEVC on an NVIDIA GPU's encoder (NVENC) in MP4 or MOV where the ffmpeg build and driver offer it.

Every writer writes to a temporary file or folder beside the target and renames it into place when
it closes, so a failed render never leaves a half-written output. Closing with keep=True after an
interruption still finishes the container (the MP4 trailer), so the frames so far play.
"""

from __future__ import annotations

import errno
import numbers
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from abc import ABC, abstractmethod
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError, InputError, OutputError
from ..fileio import (check_place, exists, hidden_name, is_dir, make_parent, place_error, png_bytes, reason,
                      remove_made, write_bytes)
from ..fileio import write_png  # noqa: F401  (re-exported: the still-image writer)
from ..vocab import CODECS

FORMATS = {".mp4": "mp4", ".mov": "mov", ".webm": "webm", ".gif": "gif", "": "png"}  # suffix -> container ("" = PNG folder)
CONTAINER_CODECS = {  # the codecs each container takes; the first is its default
    "mp4": ("h264", "h264-nvenc", "hevc-nvenc"), "mov": ("prores", "h264", "h264-nvenc", "hevc-nvenc"),
    "webm": ("vp9",), "gif": ("gif",), "png": ("png",)}
NVENC_ENCODERS = {"h264-nvenc": "h264_nvenc", "hevc-nvenc": "hevc_nvenc"}  # --codec -> ffmpeg's NVENC encoder
NVENC_CQ = 19  # NVENC constant quality (-cq, a QP scale): 19 aims at x264 crf 18's look (not yet measured on a GPU)
NVENC_CQ_RANGE = (1, 51)  # NVENC's -cq scale; 0 would mean "automatic" there, so sg3rt's starts at 1
NVENC_PRESET = "p5"  # NVENC speed/quality, p1 (fastest) .. p7 (best); p5 ("slow") favours quality
NVENC_TUNE = "hq"  # high quality, not low latency: sg3rt writes files, not streams
HEVC_TAG = "hvc1"  # the HEVC sample entry Apple players (QuickTime, Safari, iOS) need in MP4 / MOV (ffmpeg's default: hev1)
DEFAULT_CRF = 18  # x264 constant rate factor: 0 lossless .. 51 worst; 18 is visually lossless
CRF_RANGE = {"h264": (0, 51), "vp9": (0, 63),  # codecs with a constant-quality knob, and its range (low = best)
             **{codec: NVENC_CQ_RANGE for codec in NVENC_ENCODERS}}
CODEC_CRF = {"h264": DEFAULT_CRF, "vp9": 24,  # each codec's default CRF; VP9 24 looks like x264 18 at similar size
             **{codec: NVENC_CQ for codec in NVENC_ENCODERS}}
PROBE_SIZE = 256  # pixels per side of the encoder probe's frames: above every NVENC generation's minimum frame size
PROBE_FRAMES = 2  # frames the probe encodes (black)
PROBE_TIMEOUT_S = 60.0  # a driver that hangs while opening the encoder counts as unavailable
X264_PRESET = "medium"  # x264 speed/size trade-off; encoding runs beside rendering, so it is hidden
VP9_CPU_USED = 4  # libvpx speed 0 (best, slowest) .. 8; 4 keeps the encoder near the render's pace
PNG_THREADS = max(1, (os.cpu_count() or 1) - 2)  # PNG encoders per batch (zlib frees the GIL); 2 cores left to render
PRORES_HQ = "3"  # prores_ks profile: 0 proxy, 1 LT, 2 standard, 3 HQ (422 HQ: what editors expect)
AUDIO_CODECS = {"mp4": ("aac", "192k"), "mov": ("aac", "192k"), "webm": ("libopus", "128k")}  # muxed audio: codec, bitrate
FPS_RANGE = (0.01, 1000.0)  # frames/s every writer takes: 100 s a frame .. past any screen (ffmpeg read 0.0001 as 0/1)
GIF_MAX_FPS = 100.0  # a GIF's frame delays are whole centiseconds: above 100 fps ffmpeg writes 1 cs, playing too slow
FFMPEG_MAX_AREA = (2**31 - 1) // 8  # ffmpeg's av_image_check_size: (W + 128) * (H + 128) must stay below INT_MAX / 8
MAX_SIDE = {"h264": 16384, "vp9": 65536, "prores": 65535, "gif": 65535}  # pixels per side: libx264, libvpx-vp9, MOV, GIF


def output_format(path: str | os.PathLike[str]) -> str:
    """mp4 | mov | webm | gif | png (a folder), from the output path; one-line error for anything else.

    Give the path as the user wrote it (a str): a trailing separator means a folder whatever its name holds
    ("frames.v2/"), and Path() would drop it.
    """
    if str(path).endswith(("/", os.sep)):
        return "png"
    path = Path(path)
    suffix = path.suffix.lower()
    if path.name.lower() in FORMATS:  # ".mp4": a hidden name, no suffix; surely meant as a video's suffix
        raise InputError(f"{path}: give a name before the suffix (e.g. out{path.name}), "
                         f"or end it with / for a folder of PNG frames named {path.name}")
    if suffix in FORMATS and suffix and is_dir(path):
        raise InputError(f"{path}: is a folder; give a file name for {suffix} output, or a folder without a suffix for PNG frames")
    if is_dir(path):
        return "png"
    if suffix not in FORMATS:
        raise InputError(f"{path}: unknown output type {suffix!r} (use .mp4, .mov, .webm, .gif, or a folder for PNG "
                         f"frames; a folder name with a dot ends with /, e.g. {path.name}/)")
    return FORMATS[suffix]


def check_fps(fps: float, container: str | None = None, what: str = "fps") -> float:
    """A frame rate in FPS_RANGE (GIF: up to GIF_MAX_FPS), checked before any work: ffmpeg takes 0.0001 as 0/1
    (and fails after the render) and a GIF cannot hold more than 100 frames per second. `what` names the
    value in the message ("--fps", a timeline's field)."""
    lo, hi = FPS_RANGE
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not lo <= fps <= hi:  # (also NaN)
        raise InputError(f"{what} must be between {lo:g} and {hi:g} frames per second, got {fps!r}")
    if container == "gif" and fps > GIF_MAX_FPS:
        raise InputError(f"{fps:g} fps is too fast for a GIF (its frame delays are whole centiseconds: at most "
                         f"{GIF_MAX_FPS:g} fps); lower the fps or use .mp4/.webm")
    return fps


def check_crf(codec: str, crf: int | None) -> int | None:
    """The CRF to use: None = the codec's default; a CRF for a codec without one, or out of range, is an error."""
    if codec not in CRF_RANGE:
        if crf is not None:
            raise InputError(f"--crf does not apply to {codec} (only to {', '.join(CRF_RANGE)})")
        return None
    lo, hi = CRF_RANGE[codec]
    crf = CODEC_CRF[codec] if crf is None else crf
    if not lo <= crf <= hi:
        raise InputError(f"--crf for {codec} must be between {lo} (best) and {hi} (worst), got {crf}")
    return crf


def output_codec(path: str | os.PathLike[str], codec: str | None = None, crf: int | None = None,
                 fps: float | None = None) -> tuple[str, int | None]:
    """(codec, crf) for this output: codec None = the container's default, crf None = the codec's default.

    A codec the container cannot hold, a CRF for a codec without one, an fps the container cannot play
    (check_fps; None: not checked), or a hardware codec that cannot open here (check_encoder) is a
    one-line error.
    """
    container = output_format(path)
    if fps is not None:
        check_fps(fps, container)
    allowed = CONTAINER_CODECS[container]
    codec = allowed[0] if codec is None else codec
    if codec not in CODECS:
        raise InputError(f"unknown --codec {codec!r} (choose from {', '.join(CODECS)})")
    if codec not in allowed:
        where = "a folder of PNG frames" if container == "png" else f".{container}"
        fits = [suffix or "a folder" for suffix, c in FORMATS.items() if codec in CONTAINER_CODECS[c]]
        raise InputError(f"--codec {codec} does not fit {where} (use {' or '.join(fits)}, "
                         f"or --codec {' or '.join(allowed)})")
    crf = check_crf(codec, crf)
    check_encoder(codec)
    return codec, crf


def nvenc_args(codec: str, cq: int) -> list[str]:
    """ffmpeg encoder options of an NVENC codec: yuv420p at constant quality `cq` (VBR with no bitrate cap)."""
    return ["-c:v", NVENC_ENCODERS[codec], "-pix_fmt", "yuv420p", "-preset", NVENC_PRESET, "-tune", NVENC_TUNE,
            "-rc", "vbr", "-cq", str(cq), "-b:v", "0"]


_encoder_checks: dict[tuple[str, str], str | None] = {}  # (ffmpeg exe, codec) -> the error line, or None: it opens


def check_encoder(codec: str) -> None:
    """A hardware codec must open here, or a one-line BackendUnavailableError before anything renders.

    Once per ffmpeg and codec per process: is the encoder in this ffmpeg build at all, then one tiny
    test encode (ffmpeg lists the NVENC encoders whether or not a driver and an NVENC-capable GPU are
    present; only opening one tells). Software codecs pass.
    """
    if codec not in NVENC_ENCODERS:
        return
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    if (exe, codec) not in _encoder_checks:
        encoder = NVENC_ENCODERS[codec]
        _encoder_checks[exe, codec] = _probe_encoder(exe, codec) if encoder in ffmpeg_encoders(exe) else (
            f"--codec {codec}: this ffmpeg has no {encoder} encoder (imageio-ffmpeg >= 0.8 ships one that has); "
            f"use --codec h264")
    failure = _encoder_checks[exe, codec]
    if failure is not None:
        raise BackendUnavailableError(failure)


def ffmpeg_encoders(exe: str) -> frozenset[str]:
    """The encoder names an ffmpeg build lists (`ffmpeg -encoders`): "libx264", "h264_nvenc", ..."""
    listing = subprocess.run([exe, "-hide_banner", "-nostdin", "-encoders"], stdin=subprocess.DEVNULL,
                             capture_output=True, timeout=PROBE_TIMEOUT_S).stdout.decode(errors="replace")
    return listed_encoders(listing)


def listed_encoders(listing: str) -> frozenset[str]:
    """Encoder names from `ffmpeg -encoders` output: the second field of each row below the "------" rule."""
    rows = listing.split("------", 1)[-1].splitlines()
    return frozenset(m.group(1) for row in rows if (m := re.match(r"\s*[VAS][A-Z.]{5}\s+(\S+)", row)))


def _probe_encoder(exe: str, codec: str) -> str | None:
    """Encode PROBE_FRAMES black frames with this codec's real options to nowhere: None when it works,
    else the error line (encoder_failure)."""
    cmd = [exe, "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{PROBE_SIZE}x{PROBE_SIZE}", "-r", "30", "-i", "pipe:0", "-an",
           *nvenc_args(codec, CODEC_CRF[codec]), "-f", "null", "-"]
    try:
        done = subprocess.run(cmd, input=bytes(PROBE_FRAMES * PROBE_SIZE * PROBE_SIZE * 3), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=PROBE_TIMEOUT_S, start_new_session=True)
    except subprocess.TimeoutExpired:
        return _unavailable(codec, f"a test encode did not finish in {PROBE_TIMEOUT_S:g} s")
    return None if done.returncode == 0 else encoder_failure(codec, done.stderr.decode(errors="replace"))


def encoder_failure(codec: str, log: str) -> str:
    """The error line for an NVENC codec that ffmpeg could not open, from ffmpeg's stderr `log`.

    The encoder's own log lines say why when it found no usable driver or GPU ("[h264_nvenc @ 0x..]
    Cannot load libcuda.so.1"); otherwise ffmpeg's last line does.
    """
    return _unavailable(codec, ffmpeg_reason(log, NVENC_ENCODERS[codec]) or "ffmpeg gave no reason")


OS_ERRORS = ("No space left on device", "Disk quota exceeded", "File too large", "Read-only file system",
             "Permission denied")  # ffmpeg log words of a failing disk: the cause, whatever ffmpeg said last


def ffmpeg_reason(log: str, encoder: str | None = None) -> str:
    """Why ffmpeg failed, from its stderr: the first line that names an OS error (OS_ERRORS: a full disk says
    "Could not write header ...: No space left on device", then "Nothing was written into output file ..."), else
    the lines `encoder` logged itself ("[h264_nvenc @ 0x..] ..."), else the last line; without ffmpeg's
    "[out#0/mp4 @ 0x..]" tags, joined by "; "."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    own = ([line for line in lines if any(words in line for words in OS_ERRORS)][:1]
           or [line for line in lines if encoder is not None and line.startswith(f"[{encoder} @")] or lines[-1:])
    reasons = [re.sub(r"^(\[[^\]]*\]\s*)+", "", line).rstrip(".") for line in own]
    return "; ".join(dict.fromkeys(r for r in reasons if r))


def _unavailable(codec: str, reason: str) -> str:
    return f"--codec {codec}: NVENC is not available on this machine: {reason}; use --codec h264 (x264 on the CPU)"


def check_writable(path: str | os.PathLike[str]) -> None:
    """The nearest existing ancestor of `path` must be a writable folder (missing folders get created), and
    no name in `path` may be longer than the filesystem takes; any other OSError is a one-line InputError."""
    parent = check_place(path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write there (folder {parent} is not writable)")


def check_beside(path: str | os.PathLike[str], output: str | os.PathLike[str], option: str) -> None:
    """A file written with a render (`option`: --save-w, --react-plot) must not go inside a PNG output folder:
    that folder is renamed into place whole once the frames are done, so it must stay absent or empty until
    then. A one-line InputError before any work."""
    if output_format(output) != "png":
        return
    folder = Path(os.path.abspath(output))
    if folder in Path(os.path.abspath(path)).parents:
        raise InputError(f"{option} {path}: inside the PNG output folder {output}, which holds the frames only; "
                         f"give it a path outside that folder")


def even_size(frames: np.ndarray) -> np.ndarray:
    """Pad [B, H, W, C] by repeating the last row/column to even H and W (yuv420p needs even sizes)."""
    _, h, w, _ = frames.shape
    if h % 2 == 0 and w % 2 == 0:
        return frames
    return np.pad(frames, [(0, 0), (0, h % 2), (0, w % 2), (0, 0)], mode="edge")


class FrameWriter(ABC):
    """Takes uint8 frames [B, H, W, C] in order; close(keep) finishes, then renames (keep) or deletes."""

    container: str | None = None  # the container check_fps holds this writer's fps to (None: FPS_RANGE alone)

    def __init__(self, path: Path, fps: float):
        self.path = Path(path)
        self.fps = check_fps(fps, self.container)
        self.count = 0  # frames written so far
        self.size: tuple[int, int] | None = None  # (H, W) of the first frame
        self._closed = False
        self.kept = False  # renamed into place by close()
        self.kept_path: Path | None = None  # where close() put the output: self.path, or beside it (a partial)
        check_writable(self.path)
        # an existing file at the target: an interrupted render keeps its partial video beside it, not over it
        self.replaces = exists(self.path) and not is_dir(self.path)
        # the folders made for the output, deepest first: removed again when nothing is kept (a failed render
        # leaves no empty folders behind)
        self.made = make_parent(self.path, InputError)
        try:
            self.tmp = self._make_tmp()
        except BaseException:
            self._remove_made()
            raise

    @abstractmethod
    def _make_tmp(self) -> Path:
        """Create the temporary file/folder beside self.path."""

    def check_frame_size(self, height: int, width: int) -> None:
        """Frames of this size must fit the encoder: a one-line InputError before any frame is computed
        (render() calls it first), not ffmpeg failing after the first batch. PNG frames take any size."""

    @abstractmethod
    def _write(self, frames: np.ndarray) -> None:
        """Append frames [B, H, W, C] uint8."""

    @abstractmethod
    def _finish(self) -> None:
        """Finish the temporary output (container trailer, palette, ...)."""

    def write(self, frames: np.ndarray) -> None:
        frames = np.ascontiguousarray(frames)
        if frames.ndim != 4 or frames.dtype != np.uint8 or frames.shape[3] not in (1, 3, 4):
            raise ValueError(f"frames must be uint8 [B, H, W, C], got {frames.dtype} {list(frames.shape)}")
        if self.size is None:
            self.size = frames.shape[1:3]
        elif frames.shape[1:3] != self.size:
            raise ValueError(f"frame size changed from {self.size} to {frames.shape[1:3]}")
        self._write(frames)
        self.count += len(frames)

    def close(self, keep: bool = True, partial: bool = False) -> bool:
        """Finish and rename into place (keep and at least one frame), else delete; True when kept. Idempotent.

        `partial`: the render was stopped early (Ctrl-C). Where a file was at the target before this writer
        opened, the partial video is kept beside it (NAME.partial.mp4, kept_path) and the old file stays."""
        if self._closed:
            return self.kept
        self._closed = True
        try:
            self._finish()
            if keep and self.count > 0:
                target = self._partial_name() if partial and self.replaces else self.path
                self._commit(target)
                self.tmp = None
                self.kept, self.kept_path = True, target
                return True
            return False
        finally:
            if self.tmp is not None:
                self._remove_tmp()
            if not self.kept:
                self._remove_made()

    def _remove_made(self) -> None:
        remove_made(self.made)  # (only the empty ones: a folder something else has written into stays)

    def _partial_name(self) -> Path:
        """NAME.partial.SUFFIX beside the target, or NAME.partial-2.SUFFIX, ... where that is taken."""
        for n in range(1, 10_000):
            tail = f".partial{'' if n == 1 else f'-{n}'}{self.path.suffix}"
            name = hidden_name(self.path.parent, self.path.stem, tail)[1:]  # (the stem cut short to fit NAME_MAX)
            if not os.path.lexists(self.path.parent / name):
                return self.path.parent / name
        raise OutputError(f"{self.path}: no free name for the partial video beside it")

    def _commit(self, target: Path) -> None:
        """Rename the finished temp output to `target`; a partial beside an old file never replaces another."""
        try:
            if target == self.path:
                os.replace(self.tmp, target)
            else:
                _rename_new(Path(self.tmp), target)
        except OSError as e:
            raise OutputError(f"{target}: cannot put the finished output in place ({reason(e, target)}); "
                              "nothing was written") from None

    def _remove_tmp(self) -> None:
        Path(self.tmp).unlink(missing_ok=True)

    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # Finished normally or stopped early by the user: keep what was written. Any error: delete it.
        stopped = exc_type is not None and issubclass(exc_type, (KeyboardInterrupt, GeneratorExit))
        self.close(keep=exc_type is None or stopped, partial=stopped)

    def _tmp_name(self) -> Path:
        """A fresh hidden name beside the target, keeping its suffix (ffmpeg and pillow pick the format by it);
        the stem is cut short where the whole name would be longer than the filesystem takes.

        The writer creates it, so it gets the user's umask (mkstemp would make it 0600).
        """
        tail = f".{secrets.token_hex(6)}.tmp{self.path.suffix}"
        return self.path.parent / hidden_name(self.path.parent, self.path.stem, tail)


def _rename_new(source: Path, target: Path) -> None:
    """Rename `source` to `target`, which must not exist: a hard link fails rather than replace a file that
    appeared meanwhile; a folder (PNG frames), or a filesystem without hard links, is renamed after a check."""
    if not source.is_dir():
        try:
            os.link(source, target)
            source.unlink()
            return
        except FileExistsError:
            raise
        except OSError:
            pass
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    os.rename(source, target)


PIX_FMT_IN = {1: "gray", 3: "rgb24", 4: "rgba"}  # frame channels -> ffmpeg input pixel format
GIF_FILTER = ("split[a][b];[a]palettegen=stats_mode=full[p];"  # one 256-colour palette for the whole clip,
              "[b][p]paletteuse=dither=sierra2_4a")  # error-diffused: smooth gradients stay smooth


class FfmpegWriter(FrameWriter):
    """Frames piped to the ffmpeg that imageio-ffmpeg ships: the encoding runs in its own process.

    Every write and ffmpeg's exit status are checked: a full disk or a failing encoder is an
    OutputError naming the file and ffmpeg's own reason, never a reported success. ffmpeg runs in its
    own process group, so a Ctrl-C in the terminal reaches sg3rt only, which then closes the pipe and
    lets ffmpeg finish the container (a playable partial video).
    """

    encoder: str | None = None  # an ffmpeg encoder whose own log lines give the reason of a failure
    codec: str | None = None  # the --codec this writer encodes: its MAX_SIDE applies
    pads_even: bool = False  # odd frame sizes are padded to even (even_size): yuv420p / yuv422p need it

    def __init__(self, path: Path, fps: float, audio: Path | None = None):
        self._proc: subprocess.Popen | None = None
        self._log = None  # ffmpeg's stderr, a temp file (a pipe could fill up and stall it)
        self.audio = None if audio is None else self._sound_for(Path(path), audio)  # muxed at close, cut or padded
        super().__init__(path, fps)  # (after the check: it makes the temp file)

    def set_audio(self, audio: Path) -> None:
        """A sound track known only once the frames are written (live recordings): muxed at close, like `audio`."""
        self.audio = self._sound_for(self.path, audio)

    @classmethod
    def _sound_for(cls, path: Path, audio: Path) -> Path:
        """`audio` as a Path, or a one-line InputError when this output's container holds no sound."""
        if cls._audio_codec(path) is None:
            raise InputError(f"{path}: this output has no audio track; use .mp4, .mov or .webm")
        return Path(audio)

    @staticmethod
    def _audio_codec(path: Path) -> tuple[str, str] | None:
        """(ffmpeg audio codec, bitrate) of this output's container; None: it holds no audio."""
        return AUDIO_CODECS.get(FORMATS.get(path.suffix.lower(), ""))

    def _make_tmp(self) -> Path:
        tmp = self._tmp_name()
        try:
            tmp.touch()  # fail here, with one line, rather than in ffmpeg's log after the first batch
        except OSError as e:
            raise place_error(self.path, e) from None
        return tmp

    @abstractmethod
    def _codec_args(self) -> list[str]:
        """ffmpeg output options of this format (codec, pixel format, quality)."""

    def _prepare(self, frames: np.ndarray) -> np.ndarray:
        return even_size(frames) if self.pads_even else frames

    def check_frame_size(self, height: int, width: int) -> None:
        h, w = (height + height % 2, width + width % 2) if self.pads_even else (height, width)
        side = MAX_SIDE.get(self.codec)
        if side is not None and max(h, w) > side:
            raise InputError(f"{self.path}: frames of {w}x{h} are too big for {self.codec} (at most {side} pixels "
                             f"per side); render smaller frames (--size, --grid)"
                             + (" or use .webm (VP9: up to 65536)" if self.codec == "h264" else ""))
        if (w + 128) * (h + 128) >= FFMPEG_MAX_AREA:
            raise InputError(f"{self.path}: frames of {w}x{h} are too big for ffmpeg ((W + 128) x (H + 128) must stay "
                             f"under {FFMPEG_MAX_AREA}); render smaller frames (--size, --grid)")

    def _start(self, h: int, w: int, c: int) -> None:
        import imageio_ffmpeg

        rate = Fraction(self.fps).limit_denominator(1001)
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error", "-nostdin",
               "-f", "rawvideo", "-pix_fmt", PIX_FMT_IN[c], "-s", f"{w}x{h}", "-r", f"{rate.numerator}/{rate.denominator}",
               "-i", "pipe:0", "-an", *self._codec_args(), str(self.tmp)]
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log,
                                      start_new_session=True)

    def _mux_audio(self) -> None:
        """Put the sound track beside the finished video, cut or padded with silence to exactly its length
        (count / fps, so an interrupted render keeps its sound in sync); the video stream is copied as is.
        Done once the frame count is known: ffmpeg's -shortest is off by up to a second with piped video."""
        import imageio_ffmpeg

        codec, bitrate = self._audio_codec(self.path)
        muxed = self._tmp_name()
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error", "-nostdin",
               "-i", str(self.tmp), "-i", str(self.audio), "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy",
               "-c:a", codec, "-b:a", bitrate, "-af", "apad", "-t", f"{self.count / self.fps:.6f}", str(muxed)]
        self._log.seek(0)
        self._log.truncate()
        try:
            status = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log,
                                    start_new_session=True).returncode
            if status != 0:
                raise self._failed(f"adding the sound track from {self.audio} failed (exit status {status})")
            os.replace(muxed, self.tmp)
        finally:
            muxed.unlink(missing_ok=True)

    def _reason(self) -> str:
        """Why ffmpeg failed: its last line on stderr (e.g. 'No space left on device'), or the lines of
        `self.encoder` (an encoder whose own words say more, e.g. NVENC refusing a frame size)."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return ffmpeg_reason(self._log.read().decode(errors="replace"), self.encoder)

    def _failed(self, what: str) -> OutputError:
        reason = self._reason()
        return OutputError(f"{self.path}: {what}" + (f": {reason}" if reason else ""))

    def _write(self, frames: np.ndarray) -> None:
        frames = self._prepare(frames)
        if self._proc is None:
            self._start(*frames.shape[1:])
        try:
            self._proc.stdin.write(np.ascontiguousarray(frames).tobytes())
        except OSError:  # a broken pipe: ffmpeg has stopped
            self._proc.wait()
            raise self._failed(f"ffmpeg stopped (exit status {self._proc.returncode})") from None

    def _finish(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            try:
                proc.stdin.close()  # end of input: ffmpeg flushes the encoder and writes the trailer
            except OSError:
                pass  # already gone; its exit status says why
            status = proc.wait()
            if status != 0:
                raise self._failed(f"ffmpeg failed (exit status {status})")
            if self.count and Path(self.tmp).stat().st_size == 0:
                raise self._failed("ffmpeg wrote nothing")
            if self.audio is not None and self.count:
                self._mux_audio()
        finally:
            if proc.poll() is None:
                proc.kill()
            self._log.close()


class Mp4Writer(FfmpegWriter):
    """H.264 (libx264) yuv420p; odd sizes padded to even. Also in a .mov (--codec h264)."""

    encoder, codec, pads_even = "libx264", "h264", True

    def __init__(self, path: Path, fps: float, crf: int = DEFAULT_CRF, audio: Path | None = None):
        self.crf = check_crf("h264", crf)
        super().__init__(path, fps, audio)

    def _codec_args(self) -> list[str]:
        return ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(self.crf), "-preset", X264_PRESET]


class NvencWriter(FfmpegWriter):
    """H.264 or HEVC from the GPU's encoder block (NVENC), yuv420p at constant quality; odd sizes padded to even.

    The encoder runs beside the CUDA cores, so a fast GPU render is not held back by x264 on the CPU.
    HEVC is tagged hvc1 (Apple players need it; the audio mux copies the stream, tag included).
    """

    pads_even = True

    def __init__(self, path: Path, fps: float, codec: str = "h264-nvenc", crf: int | None = None,
                 audio: Path | None = None):
        if codec not in NVENC_ENCODERS:
            raise InputError(f"NvencWriter takes --codec {' or '.join(NVENC_ENCODERS)}, got {codec!r}")
        self.codec, self.encoder = codec, NVENC_ENCODERS[codec]
        self.crf = check_crf(codec, crf)
        check_encoder(codec)
        super().__init__(path, fps, audio)

    def _codec_args(self) -> list[str]:
        tag = ["-tag:v", HEVC_TAG] if self.codec == "hevc-nvenc" else []
        return [*nvenc_args(self.codec, self.crf), *tag]


class ProResWriter(FfmpegWriter):
    """Apple ProRes 422 HQ (prores_ks), 10-bit 4:2:2 in a .mov: the intermediate editors cut best.

    ProRes has no CRF: the profile fixes the quality. 4:2:2 halves the width of the colour planes,
    so odd widths are padded to even (like H.264).
    """

    encoder, codec, pads_even = "prores_ks", "prores", True

    def _codec_args(self) -> list[str]:
        return ["-c:v", "prores_ks", "-profile:v", PRORES_HQ, "-pix_fmt", "yuv422p10le"]


class Vp9Writer(FfmpegWriter):
    """VP9 (libvpx-vp9) yuv420p in a .webm at constant quality (-crf N -b:v 0); odd sizes padded to even."""

    encoder, codec, pads_even = "libvpx-vp9", "vp9", True

    def __init__(self, path: Path, fps: float, crf: int = CODEC_CRF["vp9"], audio: Path | None = None):
        self.crf = check_crf("vp9", crf)
        super().__init__(path, fps, audio)

    def _codec_args(self) -> list[str]:
        return ["-c:v", "libvpx-vp9", "-pix_fmt", "yuv420p", "-crf", str(self.crf), "-b:v", "0",
                "-deadline", "good", "-cpu-used", str(VP9_CPU_USED), "-row-mt", "1"]


class GifWriter(FfmpegWriter):
    """An animated GIF that loops forever, with one optimised palette for the whole clip.

    ffmpeg collects the palette statistics as frames stream in and writes the file at close; the
    quantisation runs in ffmpeg's own process, not in Python beside the render loop.
    """

    encoder, codec, container = "gif", "gif", "gif"

    def _codec_args(self) -> list[str]:
        return ["-filter_complex", GIF_FILTER, "-c:v", "gif", "-loop", "0"]


class PngSequenceWriter(FrameWriter):
    """A new folder of frame000000.png, frame000001.png, ... (never mixed into a folder that has files)."""

    def __init__(self, path: Path, fps: float):
        path = Path(path)
        if exists(path) and not is_dir(path):
            raise InputError(f"{path}: exists and is not a folder")
        if self._entries(path):
            raise InputError(f"{path}: folder is not empty; give a new or empty folder for the PNG frames")
        super().__init__(path, fps)

    @staticmethod
    def _entries(path: Path) -> list[str]:
        """The names in the folder `path` ([] where there is no folder)."""
        if not is_dir(path):
            return []
        try:
            return sorted(os.listdir(path))
        except OSError as e:
            raise place_error(path, e) from None

    def _make_tmp(self) -> Path:
        tmp = self._tmp_name()
        try:
            tmp.mkdir()
        except OSError as e:
            raise place_error(self.path, e) from None
        self._pool = None  # PNG_THREADS encoders, made for the first batch of several frames
        return tmp

    def check_frame_size(self, height: int, width: int) -> None:
        """PNG frames take any size; but the target folder must still be absent or empty (it is renamed into
        place whole at the end): a w file or plot written inside it (--save-w fr/keys.npz) fails here, before
        any frame, not at the final rename after the whole render."""
        names = self._entries(self.path)
        if names:
            shown = [m.group(1) if (m := re.fullmatch(r"\.(.+)\.[0-9a-f]+\.tmp", n)) else n for n in names]
            raise InputError(f"{self.path}: files were written into the PNG output folder before its frames "
                             f"({', '.join(shown[:3])}{', ...' if len(shown) > 3 else ''}); it holds the frames "
                             f"only: give --save-w and --react-plot a path outside it")

    def _write(self, frames: np.ndarray) -> None:
        """A batch's frames are compressed side by side (PNG_THREADS: a 1024 px frame takes about 50 ms, one
        encoder would cap a GPU render at about 20 frames/s), then written in order."""
        if len(frames) > 1 and PNG_THREADS > 1 and self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(PNG_THREADS, thread_name_prefix="sg3rt-png")
        encoded = self._pool.map(png_bytes, frames) if len(frames) > 1 and self._pool else map(png_bytes, frames)
        for i, data in enumerate(encoded):
            name = self.tmp / f"frame{self.count + i:06d}.png"
            try:
                write_bytes(name, data)
            except OSError as e:
                raise OutputError(f"{self.path}: cannot write {name.name} ({e.strerror or e})") from None

    def _finish(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _remove_tmp(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def takes_audio(path: str | os.PathLike[str]) -> bool:
    """Whether this output can hold a sound track (.mp4 and .mov: AAC; .webm: Opus; not GIF or PNG frames)."""
    return output_format(path) in AUDIO_CODECS


def open_writer(path: str | os.PathLike[str], fps: float, crf: int | None = None, codec: str | None = None,
                audio: Path | None = None) -> FrameWriter:
    """The writer for this output: .mp4 (H.264), .mov (ProRes 422 HQ or H.264), .webm (VP9), .gif, or a
    folder (PNG frames: a name without a suffix, or any name ending with /); .mp4 / .mov also take codec
    "h264-nvenc" or "hevc-nvenc" (NVIDIA GPUs with NVENC). codec None = the container's default; crf None =
    the codec's default. `audio`: a sound file muxed in (AAC in .mp4/.mov, Opus in .webm), as long as the
    video; GIF and PNG refuse it. Every option, fps included, is checked before anything is created."""
    codec, crf = output_codec(path, codec, crf, fps)  # (classified as written: "frames.v2/" is a folder)
    if audio is not None and not takes_audio(path):
        raise InputError(f"{path}: {output_format(path).upper()} output has no audio track; use .mp4, .mov or .webm")
    path = Path(path)
    if codec == "h264":
        return Mp4Writer(path, fps, crf, audio)
    if codec in NVENC_ENCODERS:
        return NvencWriter(path, fps, codec, crf, audio)
    if codec == "vp9":
        return Vp9Writer(path, fps, crf, audio)
    if codec == "prores":
        return ProResWriter(path, fps, audio)
    if codec == "gif":
        return GifWriter(path, fps)
    return PngSequenceWriter(path, fps)
