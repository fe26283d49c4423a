"""The package's layers, as the README's sketch draws them, checked against the imports themselves.

A module imports only from its own layer or from the layers above it in `LAYERS` (the more basic ones); the
sandbox imports nothing of the package; and every module has its place, in this table and in the README's sketch.
Imports inside `if TYPE_CHECKING:` only name types for annotations, and are not counted.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pixverse_mcp"

# From the most basic to the entry point (the README's "Development" sketch, top to bottom).
LAYERS: list[tuple[str, set[str]]] = [
    ("base", {"text", "errors", "defaults", "drain", "logs", "preview"}),
    ("library", {"models", "_retry", "polling", "pricing", "_http", "_polls", "client", "__init__"}),
    ("storage", {"storage", "storage._rows", "storage.sql", "storage.sqlite", "storage.postgres"}),
    ("domain", {"files", "inputs", "money", "timing", "watch", "spool", "settle", "prepare", "service"}),
    ("composition", {"config", "app"}),
    ("presentation", {"views", "explain", "results", "arguments", "confirm"}),
    ("mcp server", {"tasks", "tools", "player", "server"}),
    ("front ends", {"stdio", "hosting", "terminal"}),
    ("entry", {"cli", "__main__"}),
]
ASIDE = {"sandbox"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imported(path: Path) -> set[str]:
    """The package modules `path` imports at run time (a name imported from a package counts as its module)."""
    tree = ast.parse(path.read_text())
    guarded = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for statement in node.body
        for child in ast.walk(statement)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pixverse_mcp"):
            module = node.module.removeprefix("pixverse_mcp").removeprefix(".")
            if module:
                found.add(module)
            else:  # `from pixverse_mcp import x`: the package itself, or one of its modules
                found |= {alias.name if (PACKAGE / f"{alias.name}.py").exists() else "__init__" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {
                alias.name.removeprefix("pixverse_mcp.")
                for alias in node.names
                if alias.name.startswith("pixverse_mcp.")
            }
    return found


def layer_of(module: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        if module in members:
            return index
    raise AssertionError(f"{module} has no layer: place it in LAYERS and in the README's sketch")


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def test_every_module_has_its_place() -> None:
    placed = set().union(*(members for _, members in LAYERS)) | ASIDE
    assert set(modules()) - placed == set(), "a module has no layer: place it in LAYERS and the README's sketch"
    assert placed - set(modules()) == set(), "a layer names a module that no longer exists"


def test_imports_only_go_to_the_same_layer_or_a_more_basic_one() -> None:
    wrong = []
    for module, path in modules().items():
        if module in ASIDE or module == "cli":
            continue
        for target in imported(path):
            if target in ASIDE:
                wrong.append(f"{module} imports the sandbox (only cli may start it)")
            elif layer_of(target) > layer_of(module):
                wrong.append(
                    f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
                )
    assert wrong == []


def test_the_entry_point_only_dispatches_and_the_sandbox_stands_alone() -> None:
    assert imported(PACKAGE / "sandbox.py") == set()
    for module in ("stdio", "hosting", "terminal"):
        others = {"stdio", "hosting", "terminal"} - {module}
        assert imported(modules()[module]) & others == set(), f"{module} imports another front end"


def test_the_readme_sketch_names_every_module_in_its_layer() -> None:
    readme = (ROOT / "README.md").read_text()
    sketch = readme.split("## Development", 1)[1].split("```", 2)[1]
    for name, members in LAYERS:
        [line] = [line for line in sketch.splitlines() if line.startswith(name)]
        shown = set(re.findall(r"[\w./]+", line))
        for member in members - {"__init__", "__main__"}:
            assert member.removeprefix("storage.") in shown or member in shown, f"{member} missing from '{name}'"
