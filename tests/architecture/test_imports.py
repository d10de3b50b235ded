"""Imports point down (../shared/DESIGN.md §2): walk every module's imports with ast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "lamina"

# Lower rank = lower layer. Siblings share a rank and may not import each other.
RANK: dict[str, int] = {
    "errors": 0,
    "digest": 1,
    "atomic": 1,
    "archive": 2,
    "oci": 2,
    "driver": 3,
    "image": 3,
    "store": 4,
    "runtime": 4,
    "build": 5,
    "transports": 5,
    "forensics": 5,
    "engine": 6,
    "cli": 7,
}
# Allowed same-rank edges (within one package is always fine).
ALLOWED_SIBLING: set[tuple[str, str]] = {("digest", "digest"), ("atomic", "atomic")}
TOP_LEVEL_OK = {"__init__", "__main__"}


def _package_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _lamina_imports(tree: ast.AST, module_pkg: str, path: Path) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("lamina."):
                    found.append((alias.name.split(".")[1], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # relative import: resolve against the file's package
                base = path.relative_to(SRC).parts[: -node.level]
                target = (*base, *(node.module.split(".") if node.module else ()))
                if target:
                    found.append((target[0].removesuffix(".py"), node.lineno))
            elif node.module and node.module.startswith("lamina."):
                found.append((node.module.split(".")[1], node.lineno))
            elif node.module == "lamina":
                found.extend(("__init__", node.lineno) for _ in node.names)
    return found


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "testing" not in p.relative_to(SRC).parts)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    pkg = _package_of(path)
    if pkg in TOP_LEVEL_OK:
        return
    assert pkg in RANK, f"{pkg} has no place in the layer map; add it to RANK (DESIGN.md §2)"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for target, line in _lamina_imports(tree, pkg, path):
        if target in (pkg, "__init__"):
            continue
        assert target in RANK, f"{path}:{line} imports unknown package lamina.{target}"
        if RANK[target] < RANK[pkg] or (pkg, target) in ALLOWED_SIBLING:
            continue
        raise AssertionError(
            f"{path.relative_to(SRC)}:{line}: lamina.{pkg} (rank {RANK[pkg]}) imports "
            f"lamina.{target} (rank {RANK[target]}): imports must point down"
        )


def test_nothing_imports_testing() -> None:
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for target, line in _lamina_imports(tree, _package_of(path), path):
            assert target != "testing", f"{path}:{line} imports lamina.testing"
