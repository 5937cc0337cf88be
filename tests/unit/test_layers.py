"""The layers hold: import-linter's contracts in pyproject.toml pass, and each one catches a wrong import.

``lint-imports`` runs over this repository; then, in a scratch copy of the
package, one deliberately wrong import per contract is planted and the
contract must report it (the contract is tested, not only the code).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
CONTRACTS = {contract["id"]: contract for contract in CONFIG["contracts"]}
TOP = {"omniman.web", "omniman.api", "omniman.admin"}


def lint_imports(cwd: Path, *contract_ids: str) -> subprocess.CompletedProcess:
    command = [str(LINT_IMPORTS), str(REPO / "pyproject.toml"), "--no-cache"]
    for contract_id in contract_ids:
        command += ["--contract", contract_id]
    # cwd first on sys.path (lint-imports puts it there): the package analysed is the one in cwd.
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_lint_imports_keeps_every_contract():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout
    assert set(CONTRACTS) == {"layers", "kernel", "contrib", "public-surface", "private", "kernel-models"}


def test_every_module_of_the_package_is_in_a_layer():
    """A new module under omniman/ must be put in a layer (the kernel's list, or a top package)."""
    kernel = [module.strip() for module in CONTRACTS["layers"]["layers"][-1].split(":")]
    assert sorted(kernel) == sorted(CONTRACTS["kernel"]["source_modules"])
    assert CONTRACTS["layers"]["layers"][:2] == ["omniman.web | omniman.api | omniman.admin", "omniman.contrib"]
    found = {
        f"omniman.{path.stem if path.is_file() else path.name}"
        for path in (REPO / "omniman").iterdir()
        if (path.suffix == ".py" and path.stem not in {"__init__", "apps"}) or (path / "__init__.py").exists()
    }
    # omniman.apps is the glue Django loads (the app configs), above every layer.
    assert found == set(kernel) | TOP | {"omniman.contrib"}


# (contract id, module planted in the scratch copy, its wrong import)
PLANTED = [
    ("kernel", "omniman/services/planted_web.py", "from omniman.web import roles\n"),
    ("kernel", "omniman/management/planted_drf.py", "import rest_framework\n"),
    ("layers", "omniman/models/planted_contrib.py", "from omniman.contrib.refs import services\n"),
    ("layers", "omniman/api/planted_web.py", "from omniman.web import selectors\n"),
    ("contrib", "omniman/contrib/stock/planted_api.py", "from omniman.api import views\n"),
    ("public-surface", "omniman/web/planted_ops.py", "from omniman.services.ops import OPS\n"),
    ("private", "omniman/api/planted_private.py", "from omniman.services import _common\n"),
    ("kernel-models", "omniman/models/planted_engine.py", "from omniman import engine\n"),
]


def test_each_contract_reports_a_wrong_import_planted_in_a_scratch_copy(tmp_path):
    copy = tmp_path / "copy"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "templates", "static", "locale")
    shutil.copytree(REPO / "omniman", copy / "omniman", ignore=ignore)
    # The analysed package is the copy (cwd first on the path), not the repository.
    code = "import omniman; print(omniman.__file__)"
    assert subprocess.run([sys.executable, "-c", code], cwd=copy, capture_output=True, text=True).stdout.startswith(str(copy))
    assert lint_imports(copy).returncode == 0  # the copy keeps every contract before the plants

    for _contract_id, planted, line in PLANTED:
        (copy / planted).write_text(f'"""A wrong import, planted by tests/unit/test_layers.py."""\n\n{line}')
    result = lint_imports(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Contracts: 0 kept, {len(CONTRACTS)} broken." in result.stdout, result.stdout
    report = result.stdout.split("Broken contracts", 1)[1]
    # Each contract's section (between its name and the next contract's) names its planted module.
    starts = sorted((report.index(_heading(contract["name"])), contract["id"]) for contract in CONTRACTS.values())
    sections = {
        contract_id: report[start : (starts[i + 1][0] if i + 1 < len(starts) else len(report))]
        for i, (start, contract_id) in enumerate(starts)
    }
    for contract_id, planted, _line in PLANTED:
        module = planted.removesuffix(".py").replace("/", ".")
        assert f"{module} ->" in sections[contract_id], f"{contract_id} did not report {module}:\n{sections[contract_id]}"


def _heading(name: str) -> str:
    """How lint-imports prints a contract's name (wrapped at 80 columns): its first words are enough."""
    return " ".join(name.split()[:6])


@pytest.mark.parametrize(
    "module",
    ["omniman.services", "omniman.registry", "omniman.protocols", "omniman.web.selectors", "omniman.api.selectors"],
)
def test_each_public_surface_names_what_exists(module):
    """``__all__`` is the public surface: every name in it exists, and no private name is in it."""
    import importlib

    imported = importlib.import_module(module)
    assert imported.__all__ and len(set(imported.__all__)) == len(imported.__all__)
    assert [name for name in imported.__all__ if not hasattr(imported, name) or name.startswith("_")] == []
