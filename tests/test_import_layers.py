"""Imports point one way: no library module imports the CLI, and no modules import each other
in a circle. Parsed with ``ast`` (every ``import``, function-level ones included), so a circle
cannot hide behind an import inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pace_edge

ROOT = Path(pace_edge.__file__).parent
PACKAGE = "pace_edge"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Dotted names an import statement may load (``from a import b``: ``a.b`` and ``a``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if
                                                                     node.module else []))
    else:
        base = node.module or ""
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def import_graph() -> dict[str, set[str]]:
    """Module -> the ``pace_edge`` modules it imports (anywhere in its body)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = _targets(module, path, node)
            if isinstance(node, ast.ImportFrom):  # "from pkg import mod" loads pkg.mod only
                names = [n for n in names[:-1] if n in modules] or names[-1:]
            for name in names:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != module:
                    edges.add(name)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    # cli.main imports every command module inside the package; export.exporter imports the
    # signing module inside export_bundle: both must be edges
    assert "pace_edge.cli.export" in graph["pace_edge.cli.main"]
    assert "pace_edge.integrity.signing" in graph["pace_edge.export.exporter"]


def test_no_library_module_imports_the_cli() -> None:
    offenders = {module: sorted(t for t in targets if t.startswith(f"{PACKAGE}.cli"))
                 for module, targets in import_graph().items()
                 if not module.startswith(f"{PACKAGE}.cli")}
    assert {m: t for m, t in offenders.items() if t} == {}


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_cycle_finder_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
