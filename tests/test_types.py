"""mypy passes on the package (server, kernels, models)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_mypy_finds_no_errors(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "server", "kernels", "models", "--ignore-missing-imports",
         "--explicit-package-bases", "--cache-dir", str(tmp_path / "cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]
