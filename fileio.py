"""Writing outputs so that a failure never leaves a half-written file: temp name beside it, then rename.

The bottom of the package (imports nothing of sg3rt but its errors): networks/, export/, animate/,
analysis/ and the CLI all write through these helpers.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path
from typing import Any, Callable

from .errors import InputError, OutputError, Sg3rtError


NAME_MAX = 255  # bytes in one file name where the filesystem does not say (os.pathconf's PC_NAME_MAX)


def reason(error: OSError, path: str | os.PathLike[str] | None = None) -> str:
    """The cause of an OSError in words ('No space left on device'); for a name too long, how long and the limit."""
    cause = error.strerror or str(error)
    if error.errno == errno.ENAMETOOLONG and path is not None:
        path = Path(os.path.abspath(path))
        longest = max(_name_bytes(part) for part in path.parts)
        limit = name_max(path.parent)
        if longest > limit:
            return f"{cause}: a name of {longest} bytes, at most {limit}"
        return f"{cause}: the path is {_name_bytes(str(path))} bytes"
    return cause


def os_error(path: Path, error: OSError) -> OutputError:
    """One line naming the file and the cause (e.g. 'No space left on device')."""
    return OutputError(f"{path}: cannot write ({reason(error, path)})")


def place_error(path: str | os.PathLike[str], error: OSError, kind: type[Sg3rtError] = InputError) -> Sg3rtError:
    """One line for a place that cannot be written: a bad output path found before the work (InputError) or
    while writing (OutputError), naming the path and the cause."""
    return kind(f"{path}: cannot write there ({reason(error, path)})")


def lookup(path: str | os.PathLike[str], kind: type[Sg3rtError] = InputError,
           shown: str | os.PathLike[str] | None = None) -> os.stat_result | None:
    """os.stat(path), or None when nothing is there. Any other OSError (a name over NAME_MAX, no permission
    to look) is a one-line `kind` error naming `shown` (default: path): Path.exists() and is_dir() raise those."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:  # a symlink loop: nothing usable there (as Path.exists says)
            return None
        raise place_error(path if shown is None else shown, e, kind) from None


def exists(path: str | os.PathLike[str], kind: type[Sg3rtError] = InputError,
           shown: str | os.PathLike[str] | None = None) -> bool:
    return lookup(path, kind, shown) is not None


def is_dir(path: str | os.PathLike[str], kind: type[Sg3rtError] = InputError,
           shown: str | os.PathLike[str] | None = None) -> bool:
    found = lookup(path, kind, shown)
    return found is not None and stat.S_ISDIR(found.st_mode)


def name_max(folder: Path) -> int:
    """The longest file name (bytes) the filesystem of `folder` (or of its nearest existing ancestor) takes."""
    for place in (folder, *folder.parents):
        try:
            limit = os.pathconf(place, "PC_NAME_MAX")
        except (OSError, ValueError):
            continue
        return limit if limit > 0 else NAME_MAX
    return NAME_MAX


def _name_bytes(name: str) -> int:
    return len(os.fsencode(name))


def check_name(path: Path) -> None:
    """A final name longer than its filesystem takes fails now (OSError ENAMETOOLONG), not at the last rename:
    the temp names are shortened to fit, the final name cannot be."""
    if _name_bytes(path.name) > name_max(path.parent):
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), str(path))


def hidden_name(folder: Path, stem: str, tail: str) -> str:
    """"." + stem + tail (tail: the random part and suffixes), the stem cut short where the whole would be longer
    than the filesystem takes: a legal output name near NAME_MAX still gets a temp name beside it."""
    room = name_max(folder) - _name_bytes(f".{tail}")
    while stem and _name_bytes(stem) > room:
        stem = stem[:max(0, min(len(stem) - 1, room))]  # (characters: never half a UTF-8 sequence)
    return f".{stem}{tail}"


def temp_path(path: Path, suffix: str = ".tmp") -> Path:
    """A fresh hidden name beside `path` (same folder, so the final rename is atomic)."""
    return path.parent / hidden_name(path.parent, path.name, f".{secrets.token_hex(4)}{suffix}")


def create_temp_file(path: Path, suffix: str = ".tmp") -> Path:
    """Create an empty temp file beside `path`, with the mode a plain open() would give it.

    os.open(..., 0o666) lets the kernel apply the process umask, so the umask is never read or changed
    (mkstemp would make the file 0600 and reading the umask means setting it: process-global state).
    """
    return _create_beside(path, suffix, _create_file)[0]


def create_temp_dir(path: Path, suffix: str = ".tmp") -> Path:
    """Create an empty temp folder beside `path` with the mode a plain mkdir gives (the umask applies)."""
    return _create_beside(path, suffix, lambda tmp: os.mkdir(tmp, 0o777))[0]


def _create_file(tmp: Path) -> None:
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def make_parent(path: Path, kind: type[Sg3rtError] = OutputError) -> list[Path]:
    """Create the folders `path` goes in; a file in the way (or any OSError) is a `kind` error naming it.

    Returns the folders it made, deepest first: remove_made() takes them away again when the write that
    needed them fails (a failed command leaves no empty folders behind)."""
    path = Path(path)
    missing = []
    for folder in (path.parent, *path.parent.parents):
        try:
            os.stat(folder)
            break
        except FileNotFoundError:
            missing.append(folder)
        except OSError:  # not even looked at (a name too long, ...): mkdir says why
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        remove_made(missing)  # what mkdir made before it failed
        blocker = next((p for p in path.parents if os.path.exists(p)), None)  # (os.path's: False on any OSError)
        if blocker is not None and not os.path.isdir(blocker):
            raise kind(f"{path}: cannot write there ({blocker} is a file, not a folder)") from None
        raise (os_error(path, e) if kind is OutputError else place_error(path, e, kind)) from None
    return missing


def remove_made(folders: list[Path]) -> None:
    """Remove the folders make_parent made, deepest first, those that are empty (a folder something else has
    written into stays, and so do the folders above it)."""
    for folder in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:
            pass


def _create_beside(path: Path, suffix: str, create: Callable[[Path], Any]) -> tuple[Path, list[Path]]:
    """A fresh temp name beside `path`, made by `create` (which fails if the name exists), and the folders made
    for it (deepest first); OSError -> OutputError, with those folders removed again."""
    made = make_parent(path)  # outside the loop: its FileExistsError (a file in the way) is no name collision
    try:
        check_name(path)
        while True:
            tmp = temp_path(path, suffix)
            try:
                create(tmp)
                return tmp, made
            except FileExistsError:
                continue
    except OSError as e:
        remove_made(made)
        raise os_error(path, e) from None


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> None:
    """Call write(tmp_path) on a temp file beside `path`, then rename: never a half-written output.

    A failed write (disk full, ...) is an OutputError naming `path`; the temp file is removed, and so are
    the folders made for it.
    """
    path = Path(path)
    tmp, made = _create_beside(path, ".tmp", _create_file)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        remove_made(made)
        raise os_error(path, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        remove_made(made)
        raise


class FileSet:
    """Several files that appear together or not at all (e.g. `sg3rt image`'s PNGs): each is written
    to a temp name; commit() renames them all (or, when any rename fails, none), and leaving the block
    without commit removes them."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []  # (temp, final)
        self.made: list[Path] = []  # folders this set created, deepest first (removed if nothing is committed)

    def write(self, path: str | os.PathLike[str], write: Callable[[Path], Any]) -> None:
        path = Path(path)
        tmp, made = _create_beside(path, ".tmp", _create_file)
        self.made += [p for p in made if p not in self.made]
        self.pending.append((tmp, path))
        try:
            write(tmp)
        except OSError as e:
            raise os_error(path, e) from None

    def commit(self) -> None:
        """Rename every file into place, all or nothing: every target is checked first (a folder in the way),
        each file a target replaces is kept aside (a hard link) until every rename has succeeded, and a
        failed rename puts the earlier ones back. An OutputError then says that none was written."""
        count = len(self.pending)
        nothing = "" if count == 1 else f"; none of the {count} files was written"  # (one file: its error says it)
        for _, path in self.pending:
            if is_dir(path, OutputError):
                raise OutputError(f"{path}: cannot write (a folder of that name is in the way){nothing}")
        done: list[tuple[Path, Path, Path | None, bool]] = []  # (temp, final, the old file kept aside, renamed)
        try:
            for tmp, path in self.pending:
                done.append((tmp, path, _keep_aside(path), False))
                os.replace(tmp, path)
                done[-1] = (*done[-1][:3], True)
        except OSError as e:
            _put_back(done)
            raise OutputError(f"{path}: cannot write ({reason(e)}){nothing}") from None
        for _, _, old, _ in done:
            if old is not None:
                old.unlink(missing_ok=True)
        self.pending = []

    def __enter__(self) -> "FileSet":
        return self

    def __exit__(self, *exc: object) -> None:
        for tmp, _ in self.pending:
            tmp.unlink(missing_ok=True)
        if self.pending:
            remove_made(self.made)


def _keep_aside(path: Path) -> Path | None:
    """A second name for the file at `path` (None: nothing there), so that it can be put back: a hard link
    (the file keeps its name meanwhile), or, where the filesystem has none, the file renamed aside."""
    if not os.path.lexists(path):
        return None
    while True:
        old = temp_path(path, ".old")
        try:
            os.link(path, old, follow_symlinks=False)
            return old
        except FileExistsError:
            continue
        except OSError:
            if os.path.lexists(old):
                continue
            os.rename(path, old)  # (an OSError here: nothing renamed yet for this file)
            return old


def _put_back(done: list[tuple[Path, Path, Path | None, bool]]) -> None:
    """Undo FileSet.commit's renames, last first: the old files back under their names, new ones removed."""
    for tmp, path, old, renamed in reversed(done):
        try:
            if renamed:
                if old is not None:
                    os.replace(old, path)
                else:
                    os.replace(path, tmp)  # (left for __exit__ to remove, with the other temp files)
            elif old is not None:
                if os.path.lexists(path):
                    old.unlink()  # a hard link: the old file is still at `path`
                else:
                    os.replace(old, path)  # renamed aside: back
        except OSError:
            pass  # nothing more can be done here; the OutputError says the commit failed


def check_place(path: str | os.PathLike[str]) -> Path:
    """Where a file `path` could be written, checked before any work and without making anything: the nearest
    existing ancestor is a folder, and no name is longer than its filesystem takes; returns that folder
    (absolute). Any problem is a one-line InputError naming `path`."""
    parent = Path(os.path.abspath(path)).parent
    while not exists(parent, shown=path):
        parent = parent.parent
    if not is_dir(parent, shown=path):
        raise InputError(f"{path}: cannot write there ({parent} is a file, not a folder)")
    try:
        check_name(Path(os.path.abspath(path)))
    except OSError as e:
        raise place_error(path, e) from None
    return parent


def check_can_write(path: str | os.PathLike[str], suffixes: tuple[str, ...] = ()) -> None:
    """Before minutes of work (eq, bench): `path` can be written, so a typo fails first, not last.

    Its suffix is one of `suffixes` (if given); it is no folder; where its folder exists, a temp file is made
    and removed there (that catches read-only and special filesystems, which os.access does not for root).
    Missing folders are not made here: their nearest existing ancestor must be a folder."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputError(f"{path}: the file name must end in {' or '.join(suffixes)}")
    if is_dir(path):
        raise InputError(f"{path} is a folder: give a file name")
    if check_place(path) == Path(os.path.abspath(path)).parent:
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
