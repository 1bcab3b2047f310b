"""The installed package must carry every module, the templates and the board data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _declared_packages() -> set[str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    with open(REPO_ROOT / "pyproject.toml", "rb") as file:
        return set(tomllib.load(file)["tool"]["setuptools"]["packages"])


def test_every_subpackage_is_declared():
    # pyproject.toml lists packages by hand (discovery cannot see the remapped
    # templates folder), so a new subpackage must be added there.
    found = {
        ".".join(path.parent.relative_to(REPO_ROOT).parts)
        for path in (REPO_ROOT / "mon2hls").rglob("__init__.py")
    }
    missing = found - _declared_packages()
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


@pytest.mark.slow
def test_wheel_ships_templates_and_boards(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO_ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("mon2hls-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    templates = {
        "mon2hls/templates/" + path.relative_to(REPO_ROOT / "templates").as_posix()
        for path in (REPO_ROOT / "templates").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert templates - names == set()
    assert "mon2hls/targets/boards.yaml" in names
    assert "mon2hls/cli/__init__.py" in names
