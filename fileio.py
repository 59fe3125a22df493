"""Writing outputs so that a failure never leaves a half-written file: temp name beside it, then rename.

The bottom of the package (imports nothing of sg3rt but its errors): networks/, export/, animate/,
analysis/ and the CLI all write through these helpers.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Callable

from .errors import InputError, OutputError


def os_error(path: Path, error: OSError) -> OutputError:
    """One line naming the file and the cause (e.g. 'No space left on device')."""
    return OutputError(f"{path}: cannot write ({error.strerror or error})")


def temp_path(path: Path, suffix: str = ".tmp") -> Path:
    """A fresh hidden name beside `path` (same folder, so the final rename is atomic)."""
    return path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"


def create_temp_file(path: Path, suffix: str = ".tmp") -> Path:
    """Create an empty temp file beside `path`, with the mode a plain open() would give it.

    os.open(..., 0o666) lets the kernel apply the process umask, so the umask is never read or changed
    (mkstemp would make the file 0600 and reading the umask means setting it: process-global state).
    """
    return _create_beside(path, suffix, lambda tmp: os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)))


def create_temp_dir(path: Path, suffix: str = ".tmp") -> Path:
    """Create an empty temp folder beside `path` with the mode a plain mkdir gives (the umask applies)."""
    return _create_beside(path, suffix, lambda tmp: os.mkdir(tmp, 0o777))


def make_parent(path: Path) -> None:
    """Create the folders `path` goes in; a file in the way (or any OSError) is an OutputError naming it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = next((p for p in path.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise OutputError(f"{path}: cannot write there ({blocker} is a file, not a folder)") from None
        raise os_error(path, e) from None


def _create_beside(path: Path, suffix: str, create: Callable[[Path], Any]) -> Path:
    """A fresh temp name beside `path`, made by `create` (which fails if the name exists); OSError -> OutputError."""
    make_parent(path)  # outside the loop: its FileExistsError (a file in the way) is no name collision
    while True:
        tmp = temp_path(path, suffix)
        try:
            create(tmp)
            return tmp
        except FileExistsError:
            continue
        except OSError as e:
            raise os_error(path, e) from None


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> None:
    """Call write(tmp_path) on a temp file beside `path`, then rename: never a half-written output.

    A failed write (disk full, ...) is an OutputError naming `path`; the temp file is removed.
    """
    path = Path(path)
    tmp = create_temp_file(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise os_error(path, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class FileSet:
    """Several files that appear together or not at all (e.g. `sg3rt image`'s PNGs): each is written
    to a temp name; commit() renames them all, and leaving the block without commit removes them."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []  # (temp, final)
        self.made: list[Path] = []  # folders this set created (removed again if nothing is committed)

    def write(self, path: str | os.PathLike[str], write: Callable[[Path], Any]) -> None:
        path = Path(path)
        missing = [p for p in [path.parent, *path.parent.parents] if not p.exists()]
        tmp = create_temp_file(path)
        self.made += [p for p in missing if p not in self.made]
        self.pending.append((tmp, path))
        try:
            write(tmp)
        except OSError as e:
            raise os_error(path, e) from None

    def commit(self) -> None:
        for tmp, path in self.pending:
            try:
                os.replace(tmp, path)
            except OSError as e:
                raise os_error(path, e) from None
        self.pending = []

    def __enter__(self) -> "FileSet":
        return self

    def __exit__(self, *exc: object) -> None:
        for tmp, _ in self.pending:
            tmp.unlink(missing_ok=True)
        if self.pending:
            for folder in self.made:  # deepest first
                try:
                    folder.rmdir()
                except OSError:
                    pass


def check_can_write(path: str | os.PathLike[str], suffixes: tuple[str, ...] = ()) -> None:
    """Before minutes of work (eq, bench): `path` can be written, so a typo fails first, not last.

    Its suffix is one of `suffixes` (if given); it is no folder; where its folder exists, a temp file is made
    and removed there (that catches read-only and special filesystems, which os.access does not for root).
    Missing folders are not made here: their nearest existing ancestor must be a folder."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputError(f"{path}: the file name must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise InputError(f"{path} is a folder: give a file name")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{path}: cannot write there ({parent} is a file, not a folder)")
    if parent == path.parent:
        os.unlink(create_temp_file(path, ".probe"))


def write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_bytes(path: Path, data: bytes) -> None:
    """Write all of `data` through a file that is closed whatever happens (a library writer that fails
    mid-file may keep its handle open; a full filesystem then cannot even be unmounted)."""
    with open(path, "wb") as f:
        f.write(data)


def png_bytes(image: Any) -> bytes:
    """uint8 [H, W, C] (C = 1, 3 or 4) -> the bytes of a PNG file (encoded in memory)."""
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", image, extension=".png")


def write_png(path: str | os.PathLike[str], image: Any) -> None:
    """uint8 [H, W, C] (C = 1, 3 or 4) -> a PNG file, atomically."""
    data = png_bytes(image)
    atomic_write(path, lambda tmp: write_bytes(tmp, data))


def json_safe(value: Any) -> Any:
    """inf/nan -> None, recursively (JSON has neither; an infinite PSNR means identical images)."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: str | os.PathLike[str], payload: Any) -> None:
    """Indented JSON (inf/nan as null), atomically."""
    import json

    write_text(path, json.dumps(json_safe(payload), indent=2) + "\n")


def read_document(path: str | os.PathLike[str], what: str) -> Any:
    """A .toml or .json file parsed (timelines, MIDI maps); any problem is one InputError naming the file.
    `what` names the document in the messages ("timeline", "MIDI map")."""
    import json

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise InputError(f"{path}: a {what} is a .toml or .json file, not {suffix or 'no suffix'!r}")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: Windows editors (Notepad) start the file with a BOM
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the {what} ({getattr(e, 'strerror', None) or e})") from None
    if suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
            try:
                import tomli as tomllib
            except ModuleNotFoundError:
                raise InputError(f"TOML {what}s need Python 3.11+ or `pip install tomli` (JSON works everywhere)") from None
        parse, parse_error = tomllib.loads, tomllib.TOMLDecodeError
    else:
        parse, parse_error = json.loads, json.JSONDecodeError
    try:
        return parse(text)
    except parse_error as e:
        raise InputError(f"{path}: not valid {suffix[1:].upper()}: {e}") from None
