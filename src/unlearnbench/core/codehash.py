"""Which code a job runs, as a hash: a changed line of code reruns exactly the jobs whose code changed.

`code_hash("unlearnbench.methods.jit", ...)` hashes the named modules and every module of this package they import
(statically, from the source: `import` / `from ... import` statements and `lazy_import("unlearnbench....")` calls),
followed transitively. A package imported as such contributes its `__init__.py` only, so the registries' dynamic
discovery of sibling modules does not make every method depend on every other. Each module enters as its syntax
tree without docstrings, so comments, docstrings and formatting do not change the hash. Rules pass the hash as a
param: Snakemake reruns a job when a param changes. Pure Python, no import of the hashed modules.
"""
from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

PACKAGE = "unlearnbench"
ROOT = Path(__file__).resolve().parents[1]  # the package (this module is in core/)


def module_file(name: str) -> Path | None:
    """The source file of module `name` of this package (a package's __init__.py), or of a plugin package that
    registers methods or scenarios through entry points (core.registry), or None."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return _plugin_file(name) if parts[0] in _plugin_roots() else None
    base = ROOT.joinpath(*parts[1:])
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


@lru_cache(maxsize=None)
def _plugin_roots() -> frozenset[str]:
    from .registry import plugin_roots

    return plugin_roots()


@lru_cache(maxsize=None)
def _plugin_file(name: str) -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _is_package(name: str) -> bool:
    path = module_file(name)
    return path is not None and path.name == "__init__.py"


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@lru_cache(maxsize=None)
def _parse(name: str) -> tuple[str, tuple[str, ...]]:
    """(normalised syntax tree, names of this package's modules it imports) of module `name`."""
    path = module_file(name)
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    imported: set[str] = set()

    def add(candidate: str) -> None:
        if module_file(candidate) is not None:
            imported.add(candidate)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                if _is_package(module) and module_file(f"{module}.{alias.name}") is not None:
                    add(f"{module}.{alias.name}")
                else:
                    add(module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lazy_import" and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            add(node.args[0].value)
    imported.discard(name)
    return ast.dump(_strip_docstrings(tree), annotate_fields=False), tuple(sorted(imported))


def closure(*names: str) -> list[str]:
    """The named modules and every module of this package they import, transitively; sorted."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if module_file(name) is None:
            raise ValueError(f"{name}: not a module of the {PACKAGE} package or of a registered plugin")
        seen.add(name)
        todo.extend(_parse(name)[1])
    return sorted(seen)


def code_hash(*names: str) -> str:
    """sha256 (16 hex digits) of the normalised code of `closure(*names)`."""
    digest = hashlib.sha256()
    for name in closure(*names):
        digest.update(name.encode() + b"\0" + _parse(name)[0].encode() + b"\0")
    return digest.hexdigest()[:16]
