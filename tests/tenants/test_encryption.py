from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from app.core.config import new_encryption_key_entry, parse_encryption_keys
from app.core.crypto import DecryptionError, SecretBox
from app.core.db import session_factory
from tenants.credentials.models import TwilioCredential
from tenants.credentials.rotation import count_not_under_primary, rotate
from tenants.credentials.sealing import seal, unseal
from tests.factories import make_tenant

K1 = parse_encryption_keys(os.environ["NOTIFYGW_ENCRYPTION_KEYS"])[0]


def box_of(*entries: str) -> SecretBox:
    return SecretBox(parse_encryption_keys(",".join(entries)))


@settings(max_examples=60)
@given(st.text(max_size=200), st.uuids(), st.sampled_from(["t.a", "t.b"]))
def test_round_trip_and_aad_binding(plaintext, tenant_id, column):
    box = box_of(new_encryption_key_entry("a1"))
    aad = SecretBox.aad(tenant_id, "twilio_credentials", column)
    token = box.encrypt(plaintext, aad)
    assert token.startswith("a1:")
    if len(plaintext) >= 12:
        assert plaintext not in token
    assert box.decrypt(token, aad) == plaintext
    with pytest.raises(DecryptionError):
        box.decrypt(token, SecretBox.aad(uuid.uuid4(), "twilio_credentials", column))
    with pytest.raises(DecryptionError):
        box.decrypt(token, SecretBox.aad(tenant_id, "twilio_credentials", column + "x"))


def test_unknown_key_id_and_tampering_fail():
    box = box_of(new_encryption_key_entry("a1"))
    aad = b"t|x|y"
    token = box.encrypt("secret", aad)
    with pytest.raises(DecryptionError):
        box_of(new_encryption_key_entry("b1")).decrypt(token, aad)
    with pytest.raises(DecryptionError):  # same id, different key material
        box_of(new_encryption_key_entry("a1")).decrypt(token, aad)
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(DecryptionError):
        box.decrypt(tampered, aad)


def test_encryption_key_setting_is_validated():
    from app.core.config import ConfigError

    for bad in ("", "k1", "k1:short", "k-1:" + "A" * 43, f"k1:{'A' * 43},k1:{'B' * 43}"):
        with pytest.raises(ConfigError):
            parse_encryption_keys(bad)


async def _store_credential(tenant_id: uuid.UUID, token: str, box: SecretBox) -> None:
    async with session_factory()() as s:
        s.add(
            TwilioCredential(
                tenant_id=tenant_id,
                account_sid="AC" + uuid.uuid4().hex,
                auth_token_enc=seal(tenant_id, "twilio_credentials", "auth_token_enc", token, box),
                api_key_secret_enc=None,
                version=1,
            )
        )
        await s.commit()


async def test_aad_swap_between_tenants_fails(client):
    a, b = uuid.UUID((await make_tenant(client))["id"]), uuid.UUID((await make_tenant(client))["id"])
    box = box_of(f"{K1.key_id}:{K1.material.get()}")
    await _store_credential(a, "a" * 32, box)
    await _store_credential(b, "b" * 32, box)
    async with session_factory()() as s:
        rows = {r.tenant_id: r for r in (await s.execute(select(TwilioCredential))).scalars()}
        # Copy A's ciphertext into B's row, as an attacker with database access might.
        with pytest.raises(DecryptionError):
            unseal(b, "twilio_credentials", "auth_token_enc", rows[a].auth_token_enc, box)
        assert unseal(a, "twilio_credentials", "auth_token_enc", rows[a].auth_token_enc, box) == "a" * 32


async def test_rotation_then_old_key_removed(client):
    old = f"{K1.key_id}:{K1.material.get()}"
    new = new_encryption_key_entry("r2")
    tenants = [uuid.UUID((await make_tenant(client))["id"]) for _ in range(5)]
    for i, t in enumerate(tenants):
        await _store_credential(t, f"{i:032x}", box_of(old))
    both = box_of(new, old)
    async with session_factory()() as s:
        assert await count_not_under_primary(s, both) == 5
    assert await rotate(session_factory(), batch_size=2, box=both) == 5
    assert await rotate(session_factory(), box=both) == 0  # rerun is a no-op
    only_new = box_of(new)
    async with session_factory()() as s:
        rows = (await s.execute(select(TwilioCredential))).scalars().all()
        assert {
            unseal(r.tenant_id, "twilio_credentials", "auth_token_enc", r.auth_token_enc, only_new) for r in rows
        } == {f"{i:032x}" for i in range(5)}
        assert all(r.auth_token_enc.startswith("r2:") for r in rows)


async def test_rotate_cli_reports_rows(client, database):
    old = f"{K1.key_id}:{K1.material.get()}"
    tenant = uuid.UUID((await make_tenant(client))["id"])
    await _store_credential(tenant, "c" * 32, box_of(old))
    env = {**os.environ, "NOTIFYGW_ENCRYPTION_KEYS": f"{new_encryption_key_entry('cli2')},{old}"}
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "keys", "rotate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "re-encrypted 1 secrets" in out.stdout
    async with session_factory()() as s:
        stored = (await s.execute(text("SELECT auth_token_enc FROM twilio_credentials"))).scalar_one()
    assert stored.startswith("cli2:")
