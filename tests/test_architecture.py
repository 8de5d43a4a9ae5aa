"""Import arrows of DESIGN.md: bot → engine, bot → storage, storage → engine.types; no TF in bot/."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "engine", "storage")
ALLOWED = {
    "bot": {"bot", "engine", "storage"},
    "engine": {"engine"},
    "storage": {"storage", "engine"},
}


def imported_modules(path: Path, module_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    nodes = tree.body if module_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_import_arrows_point_one_way() -> None:
    wrong = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for name in imported_modules(path):
                top = name.split(".")[0]
                if top in PACKAGES and top not in ALLOWED[package]:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
                if (
                    package == "storage"
                    and top == "engine"
                    and name not in ("engine", "engine.types")
                ):
                    wrong.append(
                        f"{path.relative_to(ROOT)} imports {name} (storage may use engine.types only)"
                    )
    assert not wrong, "\n".join(wrong)


def test_bot_never_imports_tensorflow_directly() -> None:
    """Only the CLI's train/evaluate handlers may load the model code, inside their functions."""
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / "bot").rglob("*.py")
        for name in imported_modules(path)
        if name.split(".")[0] in ("tensorflow", "keras")
    ]
    offenders += [
        f"{path.relative_to(ROOT)}: {name} at module level"
        for path in (ROOT / "bot").rglob("*.py")
        for name in imported_modules(path, module_level_only=True)
        if name.startswith(
            ("engine.model", "engine.training", "engine.evaluation", "engine.inference_server")
        )
    ]
    assert not offenders, "\n".join(offenders)


def test_importing_the_media_side_loads_no_tensorflow() -> None:
    modules = ["engine", "engine.types", "engine.preprocess", "engine.datasets", "bot", "storage"]
    modules += [
        f"bot.{p.stem}"
        for p in (ROOT / "bot").glob("*.py")
        if p.stem not in ("__init__", "__main__")
    ]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules)
    code += "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, sorted(sys.modules)\n"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
