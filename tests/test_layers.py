"""The arrows of ARCHITECTURE.md, checked: import-linter's contracts (pyproject.toml) hold on the code,
cover every package and module they should, and break when an import points back up."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: import-linter brings tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"


def lint(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the project at `root` (its packages are found from the working directory)."""
    return subprocess.run(
        [sys.executable, "-c", LINT], cwd=root, capture_output=True, text=True, timeout=300, check=False
    )


def contract(name_start: str) -> dict:
    return next(c for c in CONFIG["contracts"] if c["name"].startswith(name_start))


def test_the_contracts_hold():
    r = lint(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


def test_every_package_is_checked():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert set(CONFIG["root_packages"]) == packages


def test_the_core_contract_names_every_module_around_the_core():
    around = {f"assistant.{p.stem}" for p in (ROOT / "assistant").glob("*.py") if p.stem != "__init__"}
    around |= {f"assistant.{p.parent.name}" for p in (ROOT / "assistant").glob("*/__init__.py")} - {
        "assistant.core"
    }
    assert set(contract("the model core")["forbidden_modules"]) == around


def test_an_import_pointing_up_breaks_the_contracts(tmp_path):
    for package in CONFIG["root_packages"]:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with open(tmp_path / "tools" / "images.py", "a") as f:
        f.write("\nfrom assistant import session  # noqa\n")  # a tool reaching up into the loop
    with open(tmp_path / "assistant" / "core" / "memory.py", "a") as f:
        f.write("\nfrom assistant import budget  # noqa\n")  # the core reaching into the assistant
    with open(tmp_path / "bench" / "ocr_eval.py", "a") as f:
        f.write("\nfrom frontends import cliargs  # noqa\n")
    with open(tmp_path / "evaluation" / "compare.py", "a") as f:
        f.write("\nfrom frontends import batch  # noqa\n")  # evaluation reaching into a front end
    r = lint(tmp_path)
    assert r.returncode == 1
    assert "tools.images -> assistant.session" in r.stdout
    assert "assistant.core.memory -> assistant.budget" in r.stdout
    assert "bench.ocr_eval -> frontends.cliargs" in r.stdout
    assert "evaluation.compare -> frontends.batch" in r.stdout
    assert "5 broken" in r.stdout  # layers, core, bench, evaluation, and the cycle core -> budget -> core
