"""Turn the `phone` / `whatsapp_user_id` / `email` fields of a request into identifiers (422 on bad input)."""

from __future__ import annotations

from app.core.errors import ValidationFailed
from tenants.contacts import identifiers
from tenants.contacts.identifiers import Identifier, IdentifierError

_FIELD = {"phone": "phone", "bsuid": "whatsapp_user_id", "email": "email"}


def from_fields(
    *,
    phone: str | None,
    whatsapp_user_id: str | None,
    email: str | None,
    default_region: str | None,
    prefix: str = "",
    exactly_one: bool = False,
) -> list[Identifier]:
    given = [(k, v) for k, v in (("phone", phone), ("bsuid", whatsapp_user_id), ("email", email)) if v is not None]
    if not given:
        raise ValidationFailed("name the person by phone, whatsapp_user_id or email", pointer=prefix or "/")
    if exactly_one and len(given) > 1:
        raise ValidationFailed(
            "give exactly one of phone, whatsapp_user_id, email", pointer=f"{prefix}/{_FIELD[given[1][0]]}"
        )
    out: list[Identifier] = []
    for kind, raw in given:
        try:
            if kind == "phone":
                out.append(identifiers.phone(raw, default_region))
            elif kind == "bsuid":
                out.append(identifiers.bsuid(raw))
            else:
                out.append(identifiers.email(raw))
        except IdentifierError as exc:
            raise ValidationFailed(exc.detail, pointer=f"{prefix}/{_FIELD[kind]}") from None
    return out
