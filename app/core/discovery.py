"""Find models, controllers and tasks by convention, so no central registry needs editing.

Every domain package under app/ and tenants/ that has `models.py`, `controllers.py` or `tasks.py`
is picked up; a controllers module exposes its route handlers as `ROUTES`.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any

DOMAIN_ROOTS = ("tenants", "app")


def _modules_named(leaf: str) -> list[ModuleType]:
    found: list[ModuleType] = []
    for root_name in DOMAIN_ROOTS:
        root = importlib.import_module(root_name)
        for info in pkgutil.walk_packages(root.__path__, prefix=root_name + "."):
            if info.name.rsplit(".", 1)[-1] == leaf:
                found.append(importlib.import_module(info.name))
    return sorted(found, key=lambda m: m.__name__)


def import_models() -> None:
    _modules_named("models")


def route_handlers() -> list[Any]:
    handlers: list[Any] = []
    for module in _modules_named("controllers"):
        handlers.extend(getattr(module, "ROUTES", ()))
    return handlers


def import_tasks() -> list[ModuleType]:
    return _modules_named("tasks")
