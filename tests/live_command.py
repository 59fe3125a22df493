"""`sg3rt live` as a subprocess, for the tests that stop it with Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def live_command(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """Start `sg3rt live ARGS`; yields (process, URL) once it printed its URL; kills it if the block fails."""
    proc = subprocess.Popen([sys.executable, "-m", "sg3rt.cli", "live", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
                            cwd=cwd)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() is not None else url
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()


def interrupt(proc: subprocess.Popen, timeout: float) -> str:
    """Ctrl-C, as a terminal sends it; the command's stderr, once it has exited cleanly (no traceback)."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode in (0, 130), err
    assert "Traceback" not in err
    return err
