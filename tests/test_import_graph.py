"""No import cycle anywhere in rnn_tui: the graph is read from the source (ast), every import
statement counted, those inside functions included, so a cycle that only bites when a function
first runs is caught too. Imports under `if TYPE_CHECKING:` never run and are left out."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "rnn_tui"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(tree: ast.AST, name: str, is_package: bool) -> list[tuple[str, int]]:
    """(dotted name, line) of everything an import statement in the tree names: for `from a
    import b`, both `a.b` (b may be a module) and `a`."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            found.extend((f"{target}.{alias.name}", node.lineno) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {module it imports: line}, within rnn_tui. Importing a.b.c runs the packages a
    and a.b first, so they count too, except the importer's own packages (already running)."""
    mods = modules()
    graph: dict[str, dict[str, int]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        own = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 2)}
        edges: dict[str, int] = {}
        for target, line in imported_names(tree, name, path.name == "__init__.py"):
            parts = target.split(".")
            for k in range(1, len(parts) + 1):
                candidate = ".".join(parts[:k])
                if candidate in mods and candidate not in own:
                    edges.setdefault(candidate, line)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle as a list of modules (the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = dfs(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = dfs(node)
            if cycle:
                return cycle
    return None


def describe(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    short = lambda m: m.removeprefix("rnn_tui.")  # noqa: E731
    steps = [f"{short(a)} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])]
    return " → ".join(steps + [short(cycle[-1])])


def test_the_graph_sees_function_level_and_relative_imports():
    graph = {
        "p.a": dict(imported_names(ast.parse("def f():\n    from p import b\n"), "p.a", False)),
        "p.b": dict(imported_names(ast.parse("from .a import x\n"), "p.b", False)),
        "p.c": dict(imported_names(ast.parse("from typing import TYPE_CHECKING\n"
                                             "if TYPE_CHECKING:\n    import p.a\n"), "p.c", False)),
    }
    assert "p.b" in graph["p.a"] and "p.a.x" in graph["p.b"] and "p.a" in graph["p.b"]
    assert "p.a" not in graph["p.c"]
    assert find_cycle({"a": {"b": 2}, "b": {"c": 5}, "c": {"a": 9}}) == ["a", "b", "c", "a"]
    assert describe({"a": {"b": 2}, "b": {"a": 5}}, ["a", "b", "a"]) == "a (line 2) → b (line 5) → a"
    assert find_cycle({"a": {"b": 1}, "b": {}}) is None


def test_the_graph_covers_the_package():
    graph = import_graph()
    assert "rnn_tui.ui.app" in graph and "rnn_tui.cli" in graph
    assert "rnn_tui.ui.screens.main" in graph["rnn_tui.ui.app"]


def test_no_import_cycle():
    graph = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle: {describe(graph, cycle)}"


# Leaf modules below everything: pure Python that imports nothing of rnn_tui, shared by the engine,
# the CLI and the UI (the sanitizer that every string from a file passes through).
SHARED_LEAVES = ("rnn_tui.safe_text",)


def test_the_engine_imports_only_the_engine():
    """The engine is numbers: nothing in it reaches up to the lessons, the UI, the commands or the CLI."""
    graph = import_graph()
    outside = {f"{name.removeprefix('rnn_tui.')} → {other.removeprefix('rnn_tui.')} (line {line})"
               for name, edges in graph.items() if name.startswith("rnn_tui.engine")
               for other, line in edges.items()
               if other != "rnn_tui" and not other.startswith("rnn_tui.engine") and other not in SHARED_LEAVES}
    assert not outside, f"the engine imports from outside it: {sorted(outside)}"


def test_the_shared_leaves_import_nothing_of_rnn_tui():
    graph = import_graph()
    for leaf in SHARED_LEAVES:
        assert not [other for other in graph[leaf] if other.startswith("rnn_tui")], leaf
