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
    modules += ["bot.cli", "bot.session"]
    modules += [
        f"bot.{p.parent.name}.{p.stem}"
        for package in ("cli", "session")
        for p in (ROOT / "bot" / package).glob("*.py")
        if p.stem not in ("__init__", "__main__")
    ]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules)
    code += "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, sorted(sys.modules)\n"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def _module_files() -> dict[str, Path]:
    """Every module of the project's packages by dotted name (a package by its ``__init__``)."""
    files = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def import_graph() -> dict[str, set[str]]:
    """Module → the project's modules it imports: at module level, inside functions and under
    ``TYPE_CHECKING`` alike (a type-only arrow is still an arrow); relative imports resolved;
    ``from package import name`` points at ``package.name`` when that is a module."""
    files = _module_files()

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*parent, *([base] if base else [])])
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in files else known(base))
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
    return cycles


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    """Two modules that import each other (even only for types) are one module in two files:
    the shared piece belongs in a module both import."""
    graph = import_graph()
    assert len(graph) > 100 and graph["engine.faces"]  # the walk found the modules and arrows
    cycles = import_cycles(graph)
    assert not cycles, "\n".join(
        " ↔ ".join(group)
        + ": "
        + "; ".join(f"{m} → {sorted(graph[m] & set(group))}" for m in group)
        for group in cycles
    )
