"""Every queue an actor uses has a consumer in docker/compose.yaml."""

import itertools
from pathlib import Path

import yaml

from app.actors import ACTORS
from app.core.queue import base_queue, declare

COMPOSE = Path(__file__).resolve().parents[2] / "docker" / "compose.yaml"


def consumed_queues() -> tuple[set[str], bool]:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    queues: set[str] = set()
    consumes_all = False
    for service in services.values():
        command = service.get("command") or []
        if isinstance(command, str):
            command = command.split()
        if "worker" not in command:
            continue
        named = [arg for flag, arg in itertools.pairwise(command) if flag in ("--queues", "-Q")]
        if not named:
            consumes_all = True
        queues.update(named)
    return queues, consumes_all


def test_every_actor_queue_has_a_consumer():
    declared = set(declare(ACTORS).get_declared_queues())
    consumed, consumes_all = consumed_queues()
    # `notifygw worker --queues q` consumes q's tenant lanes too (app/cli.py).
    missing = set() if consumes_all else {q for q in declared if base_queue(q).removesuffix(".DQ") not in consumed}
    assert not missing, f"queues with no worker in docker/compose.yaml: {sorted(missing)}"


def test_compose_has_a_worker():
    consumed, consumes_all = consumed_queues()
    assert consumes_all or consumed
