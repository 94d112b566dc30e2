"""Normalising and hashing the three ways to name a person: phone, WhatsApp BSUID, email."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from app.core.crypto import keyed_hash
from channels.phone import PhoneError, parse_phone, strip_whatsapp

Kind = Literal["phone", "bsuid", "email"]

# Meta's business-scoped user id: ISO country, optional ENT (managed parent), dot, up to 128 alphanumerics.
BSUID_PATTERN = r"^[A-Z]{2}(\.ENT)?\.[A-Za-z0-9]{1,128}$"
_BSUID = re.compile(BSUID_PATTERN)
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class IdentifierError(ValueError):
    def __init__(self, kind: Kind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Identifier:
    kind: Kind
    value: str

    @property
    def hash(self) -> bytes:
        return keyed_hash(f"{self.kind}:{self.value}")


def phone(raw: str, default_region: str | None = None) -> Identifier:
    try:
        return Identifier("phone", parse_phone(raw, default_region))
    except PhoneError as exc:
        raise IdentifierError("phone", exc.detail) from None


def bsuid(raw: str) -> Identifier:
    value = strip_whatsapp(raw)
    if not _BSUID.match(value):
        raise IdentifierError("bsuid", "a WhatsApp user id looks like US.13491208655302741918")
    return Identifier("bsuid", value)


def email(raw: str) -> Identifier:
    value = raw.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise IdentifierError("email", "not an email address")
    return Identifier("email", value)


def is_bsuid(address: str) -> bool:
    return bool(_BSUID.match(strip_whatsapp(address)))
