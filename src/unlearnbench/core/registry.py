"""Name → class registries filled by the modules of a package, found on disk: adding a method, a wrapper or a
scenario is one new module (no list to edit). A user's own installed package adds to them through packaging entry
points, without forking: group `unlearnbench.methods` (methods and wrappers) or `unlearnbench.scenarios`, each
entry naming a module whose `@register` classes join the registry (docs/architecture.md, "Your own package")."""
from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points

# entry-point group of each registry package
GROUPS = {"unlearnbench.methods": "unlearnbench.methods", "unlearnbench.scenarios": "unlearnbench.scenarios"}


def plugin_modules(group: str) -> list[str]:
    """The modules the installed distributions declare in entry-point `group` (`name = "package.module"`)."""
    return sorted({ep.value.partition(":")[0].strip() for ep in entry_points(group=group)})


def plugin_roots() -> frozenset[str]:
    """The top-level packages of every plugin module (whose code the code hashes follow, as this package's)."""
    return frozenset(module.split(".")[0] for group in GROUPS.values() for module in plugin_modules(group))


def discover(package_name: str, skip: tuple[str, ...] = ("base",)) -> list[str]:
    """Import every module of a package (their @register decorators fill the registry), then every module the
    installed distributions declare for it (entry points); returns their names."""
    package = importlib.import_module(package_name)
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__)
                   if not m.name.startswith("_") and m.name not in skip)
    for name in names:
        importlib.import_module(f"{package_name}.{name}")
    group = GROUPS.get(package_name)
    for module in plugin_modules(group) if group else ():
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise ImportError(f"entry point {module!r} (group {group!r}) of an installed package failed to import: "
                              f"{type(exc).__name__}: {exc}; fix or uninstall that package") from exc
        names.append(module)
    return names
