"""The explicit registries are complete: forgetting to list a route, an actor, a command or a models
module fails here, not in production.

The walk below imports every module of app/ and tenants/ (this test, not the app, is where
discovery by module name belongs) and compares what they define with the lists.
"""

from __future__ import annotations

import functools
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import click
from litestar import Controller, Router
from litestar.handlers import BaseRouteHandler

from app.actors import ACTORS
from app.cli import COMMANDS, main
from app.core.db import Base
from app.core.queue import Actor
from app.models import MODELS
from app.outbox.service import OutboxActor
from app.routes import ROUTES

ROOT = Path(__file__).resolve().parents[2]
NOT_IMPORTED = {
    "app.worker_entry",  # importing it boots a worker (it is the module the `dramatiq` CLI loads)
    "tenants.templates.render_child",  # a script run in a sandboxed child process, never imported
}


@functools.cache
def every_module() -> list[ModuleType]:
    modules = []
    for root in ("app", "tenants"):
        package = importlib.import_module(root)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{root}."):
            if info.name not in NOT_IMPORTED:
                modules.append(importlib.import_module(info.name))
    return modules


def defined_in(module: ModuleType, kind: type | tuple[type, ...]) -> list[tuple[str, object]]:
    """Module-level objects of `kind` that this module made (not ones it imported)."""
    found = []
    for name, value in vars(module).items():
        if isinstance(value, type):
            if issubclass(value, kind) and value.__module__ == module.__name__:  # type: ignore[arg-type]
                found.append((name, value))
        elif isinstance(value, kind):
            origin = getattr(getattr(value, "fn", None), "__module__", None) or getattr(
                getattr(value, "callback", None), "__module__", None
            )
            if origin in (None, module.__name__):
                found.append((name, value))
    return found


def test_every_actor_is_in_ACTORS():
    defined = {
        (module.__name__, name): value
        for module in every_module()
        for name, value in defined_in(module, Actor)
        if not isinstance(value, type)
    }
    assert len(defined) >= 6, "the walk found too few actors to be looking in the right place"
    listed = {id(a) for a in ACTORS}
    missing = sorted(f"{mod}.{name}" for (mod, name), actor in defined.items() if id(actor) not in listed)
    assert not missing, f"actors missing from ACTORS in app/actors.py: {missing}"
    assert len(listed) == len(ACTORS), "an actor is listed twice in ACTORS"


def test_actor_names_and_outbox_kinds_are_unique():
    names = [a.actor_name for a in ACTORS]
    kinds = [a.kind for a in ACTORS if isinstance(a, OutboxActor)]
    assert len(set(names)) == len(names), f"two actors share a name: {sorted(names)}"
    assert len(set(kinds)) == len(kinds), f"two actors do the same outbox kind: {sorted(kinds)}"


def test_every_route_handler_is_in_ROUTES():
    listed = {id(r) for r in ROUTES}
    defined = [
        (module.__name__, name, value)
        for module in every_module()
        for name, value in defined_in(module, (Controller, BaseRouteHandler, Router))
        if value is not Controller
    ]
    assert len(defined) >= 15, "the walk found too few route handlers to be looking in the right place"
    missing = sorted(f"{mod}.{name}" for mod, name, value in defined if id(value) not in listed)
    assert not missing, (
        f"route handlers missing from ROUTES: {missing} (list them in their module's ROUTES, "
        "and the module in app/routes.py)"
    )
    assert len(listed) == len(ROUTES), "a route handler is listed twice in ROUTES"


def _reachable(command: click.Command) -> list[click.Command]:
    found = [command]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            found += _reachable(sub)
    return found


def test_every_cli_command_is_reachable_from_notifygw():
    reachable = {id(c) for c in _reachable(main)}
    defined = [
        (module.__name__, name, value) for module in every_module() for name, value in defined_in(module, click.Command)
    ]
    assert len(defined) >= 10, "the walk found too few commands to be looking in the right place"
    missing = sorted(f"{mod}.{name}" for mod, name, value in defined if id(value) not in reachable)
    assert not missing, (
        f"CLI commands `notifygw` does not reach: {missing} (list the group in its module's COMMANDS, "
        "and the module in COMMANDS in app/cli.py)"
    )
    assert all(id(c) in reachable for c in COMMANDS)


def test_every_models_module_is_in_MODELS():
    every_module()
    listed = {m.__name__ for m in MODELS}
    owners = {mapper.class_.__module__ for mapper in Base.registry.mappers}
    missing = sorted(owners - listed)
    assert not missing, f"modules defining tables missing from MODELS in app/models.py: {missing}"


def test_app_models_alone_gives_the_whole_metadata():
    """Alembic and the CLI import app/models.py and nothing else: it must bring every table, including
    ones a module defines without a mapped class."""
    every_module()
    everything = sorted(Base.metadata.tables)
    script = "import json, app.models; from app.core.db import Base; print(json.dumps(sorted(Base.metadata.tables)))"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert json.loads(out) == everything
