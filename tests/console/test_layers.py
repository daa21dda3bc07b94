"""The console's helpers import in one direction: page scaffold on top, widgets below, data at the bottom.

Built from the source (ast), imports inside functions included: a helper that imported a module importing
it would only work by the order Python happens to load them.
"""

from __future__ import annotations

import ast
from pathlib import Path

CONSOLE = Path(__file__).resolve().parents[2] / "console"

#: docs/console.md "Layers": a module may import modules of its own layer or below, never above.
LAYERS = {
    "__main__": 4,  # the launcher (python -m console): imports no console module
    "page": 3,
    "access": 2, "approvals": 2, "banners": 2, "override_controls": 2, "demo_banner": 2, "figures": 2,
    "demo_figures": 2, "live_cards": 2, "schedule_controls": 2, "schedule_figures": 2, "notifications": 2,
    "shared": 1, "fleet_data": 1, "fleet_view": 1, "demo_fleet": 1, "text": 1,
}


def console_imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(CONSOLE.glob("*.py")):
        if path.stem == "__init__":
            continue
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    found.add((node.module or "").split(".")[0])
                elif node.module and node.module.startswith("console."):
                    found.add(node.module.split(".")[1])
                elif node.module == "console":
                    found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("console."))
        graph[path.stem] = found - {path.stem}
    return graph


def test_every_console_module_has_a_layer():
    assert set(console_imports()) == set(LAYERS), "add the new module to LAYERS here and in docs/console.md"


def test_no_helper_imports_a_layer_above_it():
    upward = [(name, dep) for name, deps in console_imports().items() for dep in deps if LAYERS[dep] > LAYERS[name]]
    assert upward == []


def test_the_import_graph_has_no_cycle():
    graph = console_imports()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())
