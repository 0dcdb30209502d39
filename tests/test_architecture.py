"""The dependency rule of ARCHITECTURE.md is enforced, not only written down: the import
contracts in pyproject.toml hold for the tree as it is, and they break (naming the chain)
when someone adds a forbidden import. And no module imports another module's private names."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ["carbon", "rewards", "biodiversity", "zerowaste", "config"]


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    """A copy of the project's packages and contracts, to add imports to."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "migrations", "demo"),
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_import_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "carbon/services/stray.py",
            "import rewards  # a core service reaching into a feature app\n",
            "The core never imports a feature app",
        ),
        (
            "rewards/stray.py",
            "import zerowaste  # one feature app reaching into another\n",
            "Feature apps never import each other",
        ),
        (
            "carbon/models/stray.py",
            "from carbon.services import ledger  # a model calling up into services\n",
            "Inside the core: API and admin use services",
        ),
        (
            "carbon/services/stray.py",
            "from carbon.adapters.transit import cards  # the core calling a slice directly\n",
            "reach the adapters only through registries",
        ),
        (
            "carbon/adapters/transit/stray_models.py",
            "",
            None,  # a new module by itself breaks nothing
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tree_copy, module, line, contract):
    target = tree_copy / module
    target.write_text(f'"""A stray module added by the test."""\n\n{line}')
    result = lint_imports(tree_copy)
    if contract is None:
        assert result.returncode == 0, result.stdout
        return
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in " ".join(broken.split()), result.stdout
    assert module.replace("/", ".").removesuffix(".py") in broken, result.stdout


def _private_imports(path: Path) -> list[str]:
    """`from <project module> import _name` in one file: a private name of another module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        if node.module.split(".")[0] not in PACKAGES:
            continue
        found += [
            f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{alias.name}"
            for alias in node.names
            if alias.name.startswith("_") and not alias.name.startswith("__")
        ]
    return found


def test_no_module_imports_another_module_s_private_names():
    """A name shared between modules is public (or copied, in a migration, which must not
    follow later changes of the code): a private one may change without warning."""
    found = [
        hit
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for hit in _private_imports(path)
    ]
    assert found == []
