"""CLI twins of the operator API, and encryption-key management."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import click
import msgspec

from app.core.config import new_encryption_key_entry
from tenants.auth import OPERATOR


def _run(work: Callable[[Any], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        from app.core.db import dispose_engine, session_factory

        try:
            async with session_factory()() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await dispose_engine()

    return asyncio.run(main())


def _echo(value: Any) -> None:
    click.echo(json.dumps(msgspec.to_builtins(value), indent=2, default=str))


@click.group("tenants")
def tenants_group() -> None:
    """Create and list tenants (the operator API's twin)."""


@tenants_group.command("create")
@click.argument("name")
@click.option("--slug", default=None)
def tenants_create(name: str, slug: str | None) -> None:
    from tenants.accounts import service

    async def work(session: Any) -> Any:
        return service.render(await service.create_tenant(session, name=name, slug=slug, actor=OPERATOR))

    _echo(_run(work))


@tenants_group.command("list")
@click.option("--limit", default=200, show_default=True)
def tenants_list(limit: int) -> None:
    from tenants.accounts import service

    async def work(session: Any) -> Any:
        return await service.list_tenants(session, cursor=None, limit=limit)

    _echo(_run(work)["items"])


def _limit_option(value: str | None) -> int | str | None:
    """`default` (or `null`) brings back the platform default; a number sets the tenant's own."""
    if value is None:
        return "unchanged"
    if value.lower() in ("default", "null", "none"):
        return None
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: a whole number, or 'default'") from None


@tenants_group.command("update")
@click.argument("tenant")
@click.option("--status", type=click.Choice(["active", "suspended"]), default=None)
@click.option("--api-rate", default=None, help="requests per second, or 'default'")
@click.option("--max-webhook-endpoints", default=None, help="a number, or 'default'")
@click.option("--max-templates", default=None, help="a number, or 'default'")
@click.option("--max-contacts", default=None, help="a number, or 'default'")
def tenants_update(
    tenant: str,
    status: str | None,
    api_rate: str | None,
    max_webhook_endpoints: str | None,
    max_templates: str | None,
    max_contacts: str | None,
) -> None:
    """Suspend or reactivate TENANT (id or slug), or set its API rate and quotas (the operator PATCH's twin)."""
    from tenants.accounts import service
    from tenants.accounts.schemas import TenantUpdate

    raw: dict[str, Any] = {"status": status} if status else {}
    for field, value in (
        ("api_rate_per_second", api_rate),
        ("max_webhook_endpoints", max_webhook_endpoints),
        ("max_templates", max_templates),
        ("max_contacts", max_contacts),
    ):
        parsed = _limit_option(value)
        if parsed != "unchanged":
            raw[field] = parsed
    try:  # the same bounds as the API
        changes = msgspec.convert(raw, TenantUpdate).changes()
    except msgspec.ValidationError as exc:
        raise click.BadParameter(str(exc)) from None

    async def work(session: Any) -> Any:
        row = await service.find_tenant(session, tenant)
        return service.render(await service.update_tenant(session, row, changes, actor=OPERATOR))

    _echo(_run(work))


@click.group("keys")
def keys_group() -> None:
    """Tenant API keys and the encryption keys for secrets at rest."""


@keys_group.command("create")
@click.argument("tenant")
@click.option("--name", required=True)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(["admin", "notifications:send", "notifications:read"]),
)
@click.option("--env", "environment", default="live", type=click.Choice(["live", "test"]), show_default=True)
def keys_create(tenant: str, name: str, scopes: tuple[str, ...], environment: str) -> None:
    """Create an API key for TENANT (id or slug); the key is printed this once."""
    from tenants.accounts import service as accounts
    from tenants.api_keys import service

    async def work(session: Any) -> Any:
        t = await accounts.find_tenant(session, tenant)
        return await service.create_key(
            session, t.id, name=name, scopes=list(scopes), environment=environment, actor=OPERATOR
        )

    _echo(_run(work))


@keys_group.command("generate-encryption-key")
@click.option("--id", "key_id", default="k1", show_default=True, help="key id: letters and digits")
def generate_encryption_key(key_id: str) -> None:
    """Print a new NOTIFYGW_ENCRYPTION_KEYS entry; put it first in the list, then run `keys rotate`."""
    if not key_id.isalnum():
        raise click.BadParameter("letters and digits only", param_hint="--id")
    click.echo(new_encryption_key_entry(key_id))


@keys_group.command("rotate")
@click.option("--batch-size", default=200, show_default=True)
def keys_rotate(batch_size: int) -> None:
    """Re-encrypt every stored secret under the first key (batched, rerunnable, interruptible)."""
    from app.core.db import dispose_engine, session_factory
    from tenants.credentials.rotation import rotate

    async def main() -> int:
        try:
            return await rotate(
                session_factory(),
                batch_size=batch_size,
                on_batch=lambda col, n: click.echo(f"  {col}: {n} rows", err=True),
            )
        finally:
            await dispose_engine()

    touched = asyncio.run(main())
    click.echo(f"re-encrypted {touched} secrets")


COMMANDS = [tenants_group, keys_group]
