"""The layout is the architecture: each package imports only from the layers beneath it, and the core (with
the entry points on top of it) loads no torch."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "src" / "mnistlab"
# Lowest first. A package may import from its own layer's other packages only where listed as a pair.
LAYERS = [
    {"core"},
    {"io"},
    {"data", "tasks"},
    {"models"},
    {"callbacks", "dashboards"},
    {"run", "sweeps"},
    {"commands"},
]
LAYER = {package: level for level, packages in enumerate(LAYERS) for package in packages}
HEAVY = ("torch", "lightning", "torchmetrics", "torchvision", "optuna", "mlflow", "wandb")
ENTRY_POINTS = sorted(path.name for path in ROOT.glob("*.py"))


def imports(path: Path, module_level_only: bool = False) -> list[tuple[int, str]]:
    """(line, module) of every import in a file; with ``module_level_only``, not those inside functions."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
        elif module_level_only and isinstance(node, ast.If):  # TYPE_CHECKING blocks
            inner = [n for n in ast.walk(node) if isinstance(n, ast.Import)]
            found += [(n.lineno, alias.name) for n in inner for alias in n.names]
    return found


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "mnistlab" and len(parts) > 1 else None


def test_every_package_has_a_layer():
    packages = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    assert packages == set(LAYER)
    assert not [path.name for path in PACKAGE.glob("*.py") if path.name != "__init__.py"], "a module outside"


def test_imports_run_only_downward():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = path.relative_to(PACKAGE).parts[0]
        if own not in LAYER:
            continue
        for line, module in imports(path):
            other = package_of(module)
            if other is None or other == own:
                continue
            if other not in LAYER or LAYER[other] >= LAYER[own]:
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not upward


def test_the_core_imports_nothing_heavy_at_module_level():
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((PACKAGE / "core").glob("*.py"))
        for line, module in imports(path, module_level_only=True)
        if module.split(".")[0] in HEAVY
    ]
    assert not found


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_an_entry_point_imports_the_core_alone_before_its_command_runs(entry_point):
    modules = [module for _, module in imports(ROOT / entry_point, module_level_only=True)]
    ours = [module for module in modules if module.startswith("mnistlab")]
    assert ours and all(package_of(module) == "core" for module in ours), ours
    assert not [module for module in modules if module.split(".")[0] in HEAVY]


def test_importing_the_whole_core_loads_no_torch():
    names = sorted(f"mnistlab.core.{path.stem}" for path in (PACKAGE / "core").glob("*.py"))
    probe = (
        f"import importlib, sys\nfor name in {names!r}:\n    importlib.import_module(name)\n"
        f"print(sorted({{name.split('.')[0] for name in sys.modules}} & {set(HEAVY)!r}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
