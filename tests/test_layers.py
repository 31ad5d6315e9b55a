"""The package's layers: each imports only its own layer and those below it, and no module
import (at module level or inside a function) closes a cycle. A new package must be placed in
:data:`LAYERS`, so the order stays the one the README's package map shows."""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

# lowest first: a module may import from its own layer and any layer before it
LAYERS = ("runtime", "data", "plan", "features", "eval", "models", "train", "stages", "cli")
Imports = dict[str, list[tuple[str, int]]]


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_imports(package: Path) -> Imports:
    """Every module of ``package`` and the modules of it that it imports, with their lines."""
    found: Imports = {}
    for path in sorted(package.rglob("*.py")):
        edges = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmsa"):
                edges.append((node.module, node.lineno))
            elif isinstance(node, ast.Import):
                edges += [(a.name, node.lineno) for a in node.names if a.name.startswith("mmsa")]
        found[module_name(path, package)] = edges
    return found


def layer(module: str) -> str | None:
    """The layer a module belongs to (None for the package root, which every layer may read)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def climbs(imports: Imports) -> list[str]:
    """Each import from a higher layer than the importing module's."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    return [
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)}) at line {line}"
        for module, edges in imports.items()
        for target, line in edges
        if layer(module) in rank and layer(target) in rank and rank[layer(target)] > rank[layer(module)]
    ]


def cycles(imports: Imports) -> list[str]:
    """Each import cycle among the modules, found by depth-first search."""
    graph = defaultdict(set)
    for module, edges in imports.items():
        graph[module] |= {t for t, _ in edges if t in imports and t != module}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                found.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(imports):
        if module not in state:
            visit(module, [module])
    return found


@pytest.fixture(scope="module")
def imports(repo) -> Imports:
    return read_imports(repo / "mmsa")


def test_every_package_is_in_a_layer(imports):
    unplaced = sorted({layer(m) for m in imports} - set(LAYERS) - {None})
    assert not unplaced, f"packages not in LAYERS: {unplaced}"
    assert {"mmsa.cli", "mmsa.plan.config", "mmsa.stages.finetune", "mmsa.runtime.io"} <= set(imports)


def test_no_module_imports_from_a_higher_layer(imports):
    assert not climbs(imports), "\n".join(climbs(imports))


def test_no_import_cycle(imports):
    assert not cycles(imports), "\n".join(cycles(imports))


def test_a_climb_and_a_cycle_are_found():
    made_up = {
        "mmsa.data.raw_table": [("mmsa.stages.fetch", 3), ("mmsa.runtime.io", 4)],
        "mmsa.stages.fetch": [("mmsa.data.raw_table", 5)],
        "mmsa.runtime.io": [],
    }
    assert climbs(made_up) == [
        "mmsa.data.raw_table (layer data) imports mmsa.stages.fetch (layer stages) at line 3"
    ]
    assert cycles(made_up) == ["mmsa.data.raw_table -> mmsa.stages.fetch -> mmsa.data.raw_table"]


def test_the_readme_package_map_lists_the_layers_in_their_order(repo):
    """The map a newcomer reads first names the layers lowest first, as :data:`LAYERS` does."""
    readme = (repo / "README.md").read_text()
    block = readme.split("## Where things are", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    listed = [
        line.split()[0].rstrip("/").removesuffix(".py")
        for line in block.splitlines()
        if line.startswith("  ")
    ]
    assert [name for name in listed if name in LAYERS] == list(LAYERS)
    packages = {p.name for p in (repo / "mmsa").iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(listed)  # every package has its line
