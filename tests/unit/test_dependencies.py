"""Every third-party package the code imports is declared in pyproject.toml.

The services must import only what ``[project].dependencies`` declares (a package that
arrives only as someone else's dependency can vanish or change major version under us);
the tests, benchmarks and scripts may also use the ``dev`` extra. Import names map to
distributions through ``importlib.metadata.packages_distributions()``.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWN = {"api", "ingest", "shiptrack", "simulator", "dashboards", "tests", "bench"}
SERVICES = ("api", "ingest", "shiptrack", "simulator")
DEV_TREES = ("tests", "bench")


def _name(requirement: str) -> str:
    """The normalized distribution name of a PEP 508 requirement."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return normalize(match.group(0))


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> tuple[set[str], set[str]]:
    """(runtime, dev) distribution names of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    dev = {_name(r) for r in project["optional-dependencies"]["dev"]}
    return runtime, dev


def top_level_imports(trees: tuple[str, ...]) -> dict[str, set[str]]:
    """Absolute third-party top-level import names -> the files that import them."""
    found: dict[str, set[str]] = {}
    for tree in trees:
        for path in sorted((ROOT / tree).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in OWN:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def undeclared(trees: tuple[str, ...], allowed: set[str]) -> list[str]:
    dists = packages_distributions()
    missing: list[str] = []
    for module, files in sorted(top_level_imports(trees).items()):
        candidates = {normalize(d) for d in dists.get(module, [])}
        if not candidates & allowed:
            where = ", ".join(sorted(files)[:3])
            missing.append(f"{module} (distributions {sorted(candidates)}; imported by {where})")
    return missing


def test_services_import_only_runtime_dependencies() -> None:
    runtime, _ = declared()
    assert undeclared(SERVICES, runtime) == []


def test_tests_and_benchmarks_import_only_declared_dependencies() -> None:
    runtime, dev = declared()
    assert undeclared(DEV_TREES, runtime | dev) == []


def test_the_scan_sees_imports_inside_functions() -> None:
    # lazy imports count: loguru is imported inside a function in shiptrack/carriers
    found = top_level_imports(SERVICES)
    assert "loguru" in found
    assert "numpy" in found


@pytest.mark.parametrize("requirement", sorted(declared()[0]))
def test_runtime_dependencies_have_an_upper_bound(requirement: str) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    spec = next(r for r in project["dependencies"] if _name(r) == requirement)
    # tzdata's version is the release date of its data: a bound would only freeze the zones
    assert "<" in spec or requirement == "tzdata", spec
