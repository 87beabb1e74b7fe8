"""Imports flow one way through the package's folders, and each folder's docstring says so.

The rule of docs/architecture.md is kept by this test, not by hand: every import in
toolchain/tinyml (at module level or inside a function, `import x` or `from x import y`,
absolute or relative) is read with `ast`, mapped to the folder it lands in, and checked
against ALLOWED. Each folder's `__init__.py` docstring (deploy.py's for the deploy module)
states the same rule in a "May import: ..." line, which this test compares with ALLOWED.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "toolchain" / "tinyml"
ROOT = "tinyml"
# The layers, lowest first, then the two front ends.
LAYERS = ("core", "model", "features", "optimize", "firmware", "device", "validation", "rig", "deploy")
FRONT_ENDS = ("cli", "labs")
EVERYTHING = frozenset(LAYERS + FRONT_ENDS)

# folder (or top-level module) -> the folders it may import besides itself.
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "model": frozenset({"core"}),
    "features": frozenset({"core"}),
    "optimize": frozenset({"core", "model"}),
    "firmware": frozenset({"core", "model", "features"}),
    "device": frozenset({"core", "model", "features", "firmware"}),
    "validation": frozenset({"core", "model", "firmware", "device"}),
    "rig": frozenset({"core", "model", "firmware", "device", "validation"}),
    "deploy": frozenset(LAYERS) - {"deploy", "rig"},
    "cli": frozenset(LAYERS),
    "labs": EVERYTHING - {"labs"},
}
# The package itself (__init__.py, __main__.py) is the lazy public API and `tinyml.main`: it
# may reach everything but the labs. Every folder may import it, for `tinyml.__version__`.
ROOT_MAY_IMPORT = EVERYTHING - {"labs"}


def stated_rule(folder: str) -> str:
    """The "May import:" text that goes with ALLOWED[folder]."""
    allowed = ALLOWED[folder]
    if not allowed:
        return "nothing else of tinyml"
    if allowed == EVERYTHING - {folder}:
        return "everything (cli included)"
    if allowed == EVERYTHING - {folder, "labs"}:
        return "everything except labs"
    return ", ".join(layer for layer in LAYERS if layer in allowed)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _folder(module: str) -> str:
    """The folder of a dotted name inside tinyml: tinyml.firmware.render -> firmware; tinyml, tinyml.__main__ -> tinyml."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and not parts[1].startswith("__") else ROOT


def _is_module(dotted: str) -> bool:
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import of tinyml in `path`, at any depth, relative ones resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # `from tinyml.firmware import protocol` imports a module; `from tinyml import __version__` a name.
            for alias in node.names:
                candidate = f"{origin}.{alias.name}"
                found.append((node.lineno, candidate if _is_module(candidate) else origin))
    return [(line, name) for line, name in found if name == ROOT or name.startswith(ROOT + ".")]


def layering_violations() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _folder(_module_name(path))
        allowed = ROOT_MAY_IMPORT if source == ROOT else ALLOWED[source] | {source}
        for line, imported in imported_modules(path):
            target = _folder(imported)
            if target != ROOT and target not in allowed:
                rule = "everything except labs" if source == ROOT else stated_rule(source)
                problems.append(f"{path.relative_to(PACKAGE.parent.parent)}:{line}: {source} imports {imported}, but {source} may import {rule}")
    return problems


def test_every_folder_has_a_rule() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    modules = {p.stem for p in PACKAGE.glob("*.py") if not p.name.startswith("__")}
    assert folders | modules == set(ALLOWED), "give a new folder its place in ALLOWED, its docstring and a row in docs/architecture.md"


def test_imports_follow_the_layers() -> None:
    problems = layering_violations()
    assert not problems, "imports against the direction of the layers:\n" + "\n".join(problems)


def test_imports_inside_functions_and_type_checking_blocks_count() -> None:
    assert "tinyml.firmware.render" in {name for _, name in imported_modules(PACKAGE / "deploy.py")}  # inside a stage function
    assert "tinyml.deploy" in {name for _, name in imported_modules(PACKAGE / "__init__.py")}  # under TYPE_CHECKING
    assert "tinyml.firmware.protocol" in {name for _, name in imported_modules(PACKAGE / "firmware" / "render.py")}  # from tinyml.firmware import protocol


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_docstring_says_what_the_folder_owns_and_may_import(folder: str) -> None:
    path = PACKAGE / folder / "__init__.py" if (PACKAGE / folder).is_dir() else PACKAGE / f"{folder}.py"
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    assert len(docstring.splitlines()) > 2, f"{path}: say in the docstring what {folder} owns"
    stated = re.findall(r"^May import: (.*)$", docstring, re.MULTILINE)
    assert stated == [stated_rule(folder) + "."], f"{path}: the docstring should say 'May import: {stated_rule(folder)}.'"
