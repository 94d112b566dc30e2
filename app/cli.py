"""The `notifygw` console script."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from app import models  # noqa: F401  (every table and mapper, for the commands that query)
from app.core.config import (
    ConfigError,
    Secret,
    Settings,
    get_settings,
    load_settings,
    parse_encryption_keys,
    set_settings,
)
from app.core.queue import with_lanes
from app.emulator import cli as emulator_cli
from app.outbox import cli as outbox_cli
from app.retention import cli as retention_cli
from app.webhooks import cli as webhooks_cli
from tenants import cli as tenants_cli

DEFAULT_OPENAPI_PATH = Path("openapi/openapi.json")


@click.group()
def main() -> None:
    """notifygw: multi-tenant WhatsApp notification gateway."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="ASGI server processes")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the API (uvicorn with uvloop and httptools)."""
    import uvicorn

    from app.server import uvicorn_options

    settings = get_settings()  # fail fast, with one line naming the variable, before forking workers
    uvicorn.run("app.asgi:create_app", factory=True, host=host, port=port, workers=workers, **uvicorn_options(settings))


@main.command()
@click.option("--processes", default=2, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--queues", "-Q", multiple=True, help="Only these queues (default: all)")
def worker(processes: int, threads: int, queues: tuple[str, ...]) -> None:
    """Run the Dramatiq workers against Redis."""
    settings = get_settings()
    if not settings.redis_url:
        raise ConfigError("NOTIFYGW_REDIS_URL is required for `notifygw worker` (dev mode runs its worker in-process)")
    args = [
        sys.executable,
        "-m",
        "dramatiq",
        "app.worker_entry",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
    ]
    if queues:
        args += ["--queues", *with_lanes(queues)]  # a queue is consumed with all its tenant lanes
    os.execv(sys.executable, args)


@main.command()
def migrate() -> None:
    """Bring the configured database to the Alembic head."""
    from app.core import migrate as migrations

    url = os.environ.get("NOTIFYGW_DATABASE_URL") or get_settings().database_url
    migrations.upgrade(url)
    click.echo("database at head")


def schema_settings() -> Settings:
    """Settings for generating the schema only: nothing is served, stored or encrypted with them."""
    return Settings(
        dev=False,
        database_url="sqlite+aiosqlite://",
        redis_url=None,
        public_base_url="http://127.0.0.1:8000",
        operator_token=Secret("unused"),
        pepper=Secret("unused"),
        encryption_keys=parse_encryption_keys("schema:" + "A" * 43),
    )


def openapi_document() -> dict[str, Any]:
    from app.asgi import create_app
    from app.core import config

    previous = config._settings
    try:
        return create_app(schema_settings(), in_process_worker=False).openapi_schema.to_schema()
    finally:
        config._settings = previous  # building the schema must not reconfigure a running process


@main.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def openapi(path: Path | None) -> None:
    """Write the app's OpenAPI document (default openapi/openapi.json)."""
    path = path or DEFAULT_OPENAPI_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n")
    click.echo(f"wrote {path}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def dev(host: str, port: int) -> None:
    """The embedded default: SQLite, in-process queue and emulator, no servers needed."""
    import uvicorn

    from app.core import migrate as migrations
    from app.dev import bootstrap

    # The emulator is mounted in this very server: providers, their callbacks and media all point here.
    # Each can still be overridden from the environment.
    own = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # a wildcard is not an address to call
    base = f"http://{f'[{own}]' if ':' in own else own}:{port}"
    os.environ.setdefault("NOTIFYGW_PUBLIC_BASE_URL", base)
    os.environ.setdefault("NOTIFYGW_TWILIO_API_BASE_URL", base)
    os.environ.setdefault("NOTIFYGW_SENDGRID_API_BASE_URL", base)
    trusted = [h.strip() for h in os.environ.get("NOTIFYGW_TRUSTED_MEDIA_HOSTS", "").split(",") if h.strip()]
    if f"{own.lower()}:{port}" not in trusted:  # "host:port", as the media guard compares it
        os.environ["NOTIFYGW_TRUSTED_MEDIA_HOSTS"] = ",".join([*trusted, f"{own.lower()}:{port}"])
    settings = load_settings(dev=True)
    set_settings(settings)
    migrations.upgrade(settings.database_url)
    from app.asgi import create_app

    app = create_app(settings)
    banner = bootstrap(app, settings)
    click.echo(banner)
    sys.stdout.flush()  # before the server's logs, even when stdout is a pipe or a file
    from app.server import uvicorn_options

    uvicorn.run(app, host=host, port=port, **uvicorn_options(settings))


# Every command group the domains define, beside them in their cli.py (each module's COMMANDS).
# A new cli module is added here (tests/meta/test_registries.py fails until it is).
COMMANDS: list[click.Command] = [
    *tenants_cli.COMMANDS,  # tenants, keys
    *outbox_cli.COMMANDS,  # dead-letters
    *webhooks_cli.COMMANDS,  # replay
    *retention_cli.COMMANDS,  # retention
    *emulator_cli.COMMANDS,  # emulator
]
for _command in COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":
    main()
