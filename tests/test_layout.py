"""The folder listing shows the architecture: a worker loads only the worker core, pages/ holds only pages."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_import_breaker_loads_no_operator_module():
    """`import breaker` loads the worker core only: no audit, access, drills, zombie or targets."""
    loaded = _python("import breaker, sys; print(' '.join(m for m in sys.modules if m.startswith('breaker')))").split()
    assert loaded and not [m for m in loaded if m.startswith("breaker.ops")]


def test_operator_package_imports_without_streamlit():
    """breaker.ops is shared by the console, the CLI and the demo fleet, so it never needs streamlit."""
    out = _python("import sys; sys.modules['streamlit'] = None; import breaker.ops; print('ok')")
    assert out.strip() == "ok"


def test_every_file_in_pages_is_a_registered_page():
    """pages/ holds only page scripts that the navigation registers (helpers live in console/)."""
    registered = set(re.findall(r'st\.Page\(\s*"(pages/[^"]+\.py)"', (ROOT / "console" / "page.py").read_text()))
    on_disk = {f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py")}
    assert on_disk == registered


def test_every_import_the_docs_show_exists():
    """Each `from breaker… import …` line in README.md and docs/*.md names things that module has: a worker
    copying an example gets no ImportError (names moved between breaker and breaker.ops in v2)."""
    import importlib

    missing = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line in doc.read_text().splitlines():
            found = re.match(r"\s*from (breaker(?:\.\w+)*) import ([\w, ]+)", line)
            if not found:
                continue
            module = importlib.import_module(found.group(1))
            missing += [f"{doc.name}: {found.group(1)}.{name.strip()}" for name in found.group(2).split(",")
                        if name.strip() and not hasattr(module, name.strip())]
    assert missing == []
