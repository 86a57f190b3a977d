"""Every distribution the product imports is declared in pyproject.toml's `dependencies`: one
that only arrives with another library (numpy with transformers, lxml with trafilatura) may
leave with that library's next release."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from importlib.metadata import packages_distributions

from conftest import ROOT

# The product: its packages and its top-level modules (not the tests, evals or bench).
PRODUCT_PACKAGES = ("assistant", "ingest")
PRODUCT_MODULES = ("ui", "wiring")
FIRST_PARTY = {*PRODUCT_PACKAGES, *PRODUCT_MODULES, "evals", "bench"}


def _normal(name: str) -> str:
    """A distribution's name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    """The distributions pyproject.toml's `[project] dependencies` name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = (re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec) for spec in project["dependencies"])
    return {_normal(match.group()) for match in names if match}


def imported(source: str) -> set[str]:
    """The top-level modules `source` imports absolutely, at any depth of its code (imports
    inside functions and under `TYPE_CHECKING` too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.partition(".")[0])
    return found


def undeclared(modules: Iterable[str], declared: set[str],
               distributions: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Each third-party module among `modules` that no declared distribution provides, with
    the installed distributions that do (none: installed by nothing)."""
    missing: dict[str, list[str]] = {}
    for module in sorted(set(modules) - FIRST_PARTY - set(sys.stdlib_module_names)):
        providers = distributions.get(module, [])
        if not {_normal(name) for name in providers} & declared:
            missing[module] = sorted(providers)
    return missing


def product_sources() -> dict[str, str]:
    """Each product file (relative path) -> its source."""
    paths = [p for package in PRODUCT_PACKAGES for p in (ROOT / package).rglob("*.py")]
    paths += [ROOT / f"{name}.py" for name in PRODUCT_MODULES]
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in sorted(paths)}


def test_every_distribution_the_product_imports_is_declared() -> None:
    distributions = packages_distributions()
    missing = {path: found for path, source in product_sources().items()
               if (found := undeclared(imported(source), declared(), distributions))}
    assert not missing, f"imported but not in pyproject.toml's dependencies: {missing}"


def test_an_installed_but_undeclared_import_is_caught() -> None:
    # certifi is installed (httpx brings it) and the product does not declare it.
    assert "certifi" not in declared() and "certifi" in packages_distributions()
    source = (
        "from __future__ import annotations\n"
        "import json, os.path\n"
        "from typing import TYPE_CHECKING\n"
        "import numpy as np\n"
        "from assistant.types import Answer\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n"
        "    from lxml import html\n"
        "def where() -> str:\n"
        "    import certifi.core\n"
        "    return certifi.core.where()\n"
    )
    assert imported(source) >= {"json", "os", "numpy", "assistant", "lxml", "certifi"}
    assert undeclared(imported(source), declared(), packages_distributions()) == {
        "certifi": ["certifi"]}
    # And a declared distribution stops being one once pyproject.toml drops it.
    assert undeclared(["numpy"], declared() - {"numpy"}, {"numpy": ["numpy"]}) == {
        "numpy": ["numpy"]}


def test_a_module_no_distribution_installs_is_caught() -> None:
    assert undeclared(["not_a_real_module"], declared(), packages_distributions()) == {
        "not_a_real_module": []}
