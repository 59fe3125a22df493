"""The suite runs in a checkout of any folder name (a ZIP download unpacks to `sg3rt-main/`).

The checkout is itself the package (it has an __init__.py); pytest must never collect it as a test
package, which only works when the folder happens to be named `sg3rt`. tests/pytest.ini makes tests/
pytest's rootdir; this runs pytest in a copy of the checkout under another name.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def test_suite_collects_and_passes_in_a_folder_not_named_sg3rt(tmp_path):
    copy = tmp_path / "sg3rt-main"
    shutil.copytree(CHECKOUT, copy, ignore=shutil.ignore_patterns(
        ".git", ".*venv*", "data", "results", "__pycache__", "*.egg-info", "build", "dist", "*.mp4"))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_layering.py"],
                            cwd=copy, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "4 passed" in result.stdout
