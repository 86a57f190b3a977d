"""The layout holds: no import cycles, `assistant` never imports `ingest` (the two meet only
in the composition root, `wiring.py`), and the product never imports its yardsticks."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = ("assistant", "ingest", "evals", "bench")
# The product's top-level modules beside its packages.
TOP_MODULES = ("ui", "wiring")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    found.update({name: ROOT / f"{name}.py" for name in TOP_MODULES})
    return found


def import_graph() -> dict[str, set[str]]:
    """Each project module -> the project modules it imports (at any depth of its code)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                    + ([base] if base else []))
                # `from a import b` imports module a.b when there is one, else names of a.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_project_has_no_import_cycle() -> None:
    cycle = _cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_a_planted_cycle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]


def test_assistant_never_imports_ingest() -> None:
    crossing = {(source, target) for source, targets in import_graph().items()
                for target in targets
                if source.startswith("assistant") and target.startswith("ingest")}
    assert not crossing, crossing


def test_the_composition_root_wires_ingest_into_the_server() -> None:
    assert {"assistant.server.http", "ingest.pipeline", "ingest.web",
            "ingest.watch"} <= import_graph()["wiring"]


def test_the_product_never_imports_its_yardsticks() -> None:
    for source, targets in import_graph().items():
        if source.startswith(("assistant", "ingest")) or source in TOP_MODULES:
            assert not {t for t in targets if t.startswith(("evals", "bench"))}, source
