"""mypy checks every module of the package, with every `attribid` import resolved."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _mypy(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_mypy_with_the_project_config_finds_no_errors(tmp_path: Path) -> None:
    done = _mypy(cache=tmp_path / "cache")
    assert done.returncode == 0, done.stdout[-4000:]
    # Every code folder is checked: a source root that mypy cannot map would check nothing.
    checked = int(done.stdout.split(" source files")[0].rsplit(" ", 1)[-1])
    modules = [p for root in ("server", "kernels", "models")
               for p in (ROOT / root / "attribid").rglob("*.py")]
    assert checked >= len(modules)


@pytest.mark.slow
def test_mypy_sees_across_modules(tmp_path: Path) -> None:
    """A type error that is only visible through an import is found."""
    code = ("from attribid.kernels.featurize import featurize\n"
            "from attribid.runtime.settings import Settings\n"
            "Settings(max_batch='six')\n")
    probe = tmp_path / "probe.py"
    probe.write_text(code)
    done = _mypy(str(probe), cache=tmp_path / "cache")
    assert done.returncode == 1, done.stdout
    assert 'incompatible type "str"; expected "int"' in done.stdout
