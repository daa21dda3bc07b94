"""Packaging: `pip install .` gives `breaker` and the `vix-breaker` command; one version, one place."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

from breaker import __version__

ROOT = Path(__file__).resolve().parents[1]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_pip_install_into_a_fresh_venv_gives_the_cli(tmp_path):
    """The wheel built from pyproject.toml installs into a new venv whose `vix-breaker --version` answers."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "breaker", source / "breaker", ignore=shutil.ignore_patterns("__pycache__"))
    python = sys.executable
    subprocess.run([python, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", str(source),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("vix_breaker-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # the dependencies come from the project's environment (offline, fast); the package itself from the wheel
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run([str(venv / "bin" / "python"), "-c", purelib], check=True, capture_output=True,
                          text=True).stdout.strip()
    Path(site, "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    out = subprocess.run([str(venv / "bin" / "vix-breaker"), "--version"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"vix-breaker {__version__}"
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import breaker; print(breaker.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv))


def test_version_and_dependencies_come_from_one_place():
    """The version is read from breaker/_version.py; each dependency's floor is the version pinned in requirements."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"] and "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "breaker._version.__version__"}
    pins = _pins(ROOT / "requirements.txt")
    declared = project["project"]["dependencies"] + project["project"]["optional-dependencies"]["console"]
    for requirement in declared:
        name, floor = re.fullmatch(r"([A-Za-z0-9_.-]+)>=(\S+)", requirement).groups()
        assert pins[name.lower().replace("_", "-")] == floor, requirement
    assert set(pins) == {re.split(r"[>=]", r)[0].lower().replace("_", "-") for r in declared}
    assert project["project"]["scripts"] == {"vix-breaker": "breaker.ops.cli:main"}
