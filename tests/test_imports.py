"""The package's import graph has no cycles, counting imports inside functions (a lazy import
hides a cycle, it does not remove it) and leaving out `if TYPE_CHECKING:` imports (annotations
only). Every module also imports on its own."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# package -> folder, as in pyproject.toml's package-dir
PACKAGES = {"support_mcp": ROOT / "src" / "support_mcp", "support_mcp.tools": ROOT / "tools",
            "support_mcp.resources": ROOT / "resources", "support_mcp.sql": ROOT / "sql"}


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, path: Path, known: dict[str, Path]) -> dict[str, int]:
    """The package modules `name` imports (module -> line), anywhere but under TYPE_CHECKING."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: dict[str, int] = {}

    def add(target: str, line: int) -> None:
        while target not in known and "." in target:  # `from .x import some_function` -> .x
            target = target.rsplit(".", 1)[0]
        if target in known and target != name:
            out.setdefault(target, line)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit_node(other)
            else:
                visit_node(child)

    def visit_node(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("support_mcp"):
                    add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("support_mcp"):
                for alias in node.names:
                    add(f"{module}.{alias.name}", node.lineno)
        else:
            visit(node)

    visit(ast.parse(path.read_text("utf-8"), str(path)))
    return out


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := walk(start)):
            return cycle
    return None


def test_the_import_graph_has_no_cycles() -> None:
    known = modules()
    assert "support_mcp.db" in known and "support_mcp.tools.tickets" in known
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(
        f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)) + f" -> {cycle[-1]}"


def test_the_cycle_check_sees_lazy_imports_and_ignores_type_checking(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("def f():\n    from . import b\n")
    (tmp_path / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import c\n"
                                   "from .a import f\n")
    (tmp_path / "c.py").write_text("from .b import x\n")
    known = {f"support_mcp.{n}": tmp_path / f"{n}.py" for n in "abc"}
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    assert graph == {"support_mcp.a": {"support_mcp.b": 2}, "support_mcp.b": {"support_mcp.a": 4},
                     "support_mcp.c": {"support_mcp.b": 1}}
    assert find_cycle(graph) == ["support_mcp.a", "support_mcp.b", "support_mcp.a"]


def test_every_module_imports() -> None:
    for name in sorted(modules()):
        if name.startswith("support_mcp.sql.") or name.endswith("__main__"):  # __main__ runs the CLI
            continue
        importlib.import_module(name)
