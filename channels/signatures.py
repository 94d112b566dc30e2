"""Webhook signatures: Twilio (X-Twilio-Signature), SendGrid Event Webhook (ECDSA) and Standard
Webhooks (what we sign our own outbound tenant webhooks with).

Twilio's algorithm is ours rather than RequestValidator's because we take the form as ordered
(name, value) pairs straight from the request: repeated keys (MediaUrl) need no multidict shim,
and the emulator signs with the very same function it is validated with. The tests hold it to
Twilio's official vectors and cross-check it against RequestValidator.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

# --------------------------------------------------------------------------------------------
# Twilio
# --------------------------------------------------------------------------------------------
TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
TWILIO_SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
HMAC_SHA1 = "HMAC_SHA1"
HMAC_SHA256 = "HMAC_SHA256"
_TWILIO_HASHES = {HMAC_SHA1: hashlib.sha1, HMAC_SHA256: hashlib.sha256}

FormParams = Iterable[tuple[str, str]] | Mapping[str, str]


def twilio_signature_algorithm(settings_header: str | None) -> str:
    """The algorithm named by X-Twilio-Webhooks-Signature-Settings (`key=...,algorithm=...`);
    HMAC_SHA1 (the legacy Auth Token signature) when the header is absent or names none."""
    for part in (settings_header or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "algorithm" and value.strip():
            return value.strip()
    return HMAC_SHA1


def _pairs(params: FormParams | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        return list(params.items())
    return list(params)


def compute_twilio_signature(token: str, url: str, params: FormParams | None = None, algorithm: str = HMAC_SHA1) -> str:
    """base64(HMAC(token, url + name1 + value1 + ...)) with names and, per name, values sorted by
    code point and de-duplicated (as Twilio does). Raises ValueError for an unknown algorithm."""
    return _signature(token, url + _signed_params(params), _hash_for(algorithm))


def _hash_for(algorithm: str) -> Any:
    hash_fn = _TWILIO_HASHES.get(algorithm.upper())
    if hash_fn is None:
        raise ValueError(f"unsupported Twilio signature algorithm: {algorithm}")
    return hash_fn


def _signed_params(params: FormParams | None) -> str:
    grouped: dict[str, set[str]] = {}
    for name, value in _pairs(params):
        grouped.setdefault(name, set()).add(value)
    return "".join(name + value for name in sorted(grouped) for value in sorted(grouped[name]))


def _signature(token: str, signed: str, hash_fn: Any) -> str:
    return base64.b64encode(hmac.new(token.encode(), signed.encode(), hash_fn).digest()).decode()


def _port_variants(url: str) -> tuple[str, str]:
    """(without the port, with the default port): Twilio signs one or the other. ValueError for a
    non-numeric or out-of-range port."""
    parsed = urlparse(url)
    if parsed.port:
        # Cut only the trailing ":port", so userinfo and bracketed IPv6 hosts survive.
        return parsed._replace(netloc=parsed.netloc.rsplit(":", 1)[0]).geturl(), parsed.geturl()
    default = 443 if parsed.scheme == "https" else 80
    return parsed.geturl(), parsed._replace(netloc=f"{parsed.netloc}:{default}").geturl()


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def validate_twilio_signature(
    token: str,
    url: str,
    params: FormParams | None,
    signature: str | None,
    *,
    algorithm: str | None = None,
    body: bytes | str | None = None,
) -> bool:
    """Check X-Twilio-Signature for the URL our server was asked for (with its query string).

    Twilio signs either with or without the default port, so both are accepted. For JSON bodies
    (the URL carries `bodySHA256`), pass the raw `body`: its hash is checked and the signature
    covers the URL alone. An unknown algorithm, or a missing signature, is simply invalid.
    """
    algorithm = (algorithm or HMAC_SHA1).upper()
    if not signature or algorithm not in _TWILIO_HASHES:
        return False
    body_ok = True
    if body is not None:
        expected_hash = parse_qs(urlparse(url).query).get("bodySHA256")
        if expected_hash:
            raw = body.encode() if isinstance(body, str) else body
            body_ok = _equal(hashlib.sha256(raw).hexdigest(), expected_hash[0])
            params = None
    try:
        candidates = _port_variants(url)
    except ValueError:  # a non-numeric or out-of-range port (the Host header is client-controlled)
        return False
    signed_params, hash_fn = _signed_params(params), _TWILIO_HASHES[algorithm]
    sig_ok = False
    for candidate in candidates:  # no short-circuit: both comparisons always run
        sig_ok |= _equal(_signature(token, candidate + signed_params, hash_fn), signature)
    return body_ok and sig_ok


# --------------------------------------------------------------------------------------------
# SendGrid signed Event Webhook (ECDSA P-256 / SHA-256 over timestamp + raw body)
# --------------------------------------------------------------------------------------------
SENDGRID_SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


def load_sendgrid_public_key(public_key_b64: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it: base64 DER SubjectPublicKeyInfo, P-256.
    Raises ValueError when it is not one (a tenant configuration error, not a bad request)."""
    try:
        key = serialization.load_der_public_key(base64.b64decode(public_key_b64, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not a base64 DER public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the SendGrid verification key must be an EC P-256 public key")
    return key


def verify_sendgrid_event(
    public_key_b64: str,
    payload: bytes,
    signature_b64: str | None,
    timestamp: str | None,
    *,
    max_age_seconds: float | None = None,
    now: float | None = None,
) -> bool:
    """Verify a signed Event Webhook POST. `payload` must be the raw body bytes, untouched
    (SendGrid's own vector ends in CRLF and fails without it). `max_age_seconds` optionally
    refuses stale timestamps, which the signature alone cannot do against replays."""
    if not signature_b64 or not timestamp:
        return False
    if max_age_seconds is not None:
        try:
            age = (time.time() if now is None else now) - int(timestamp)
        except ValueError:
            return False
        if abs(age) > max_age_seconds:
            return False
    key = load_sendgrid_public_key(public_key_b64)
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        key.verify(signature, timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def sign_sendgrid_event(private_key: ec.EllipticCurvePrivateKey, payload: bytes, timestamp: str) -> str:
    """The emulator's side: base64 DER ECDSA signature over timestamp + raw body."""
    return base64.b64encode(private_key.sign(timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))).decode()


def sendgrid_public_key_b64(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The string a tenant pastes into our settings, in the format SendGrid's console shows."""
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


# --------------------------------------------------------------------------------------------
# Standard Webhooks (https://www.standardwebhooks.com): HMAC-SHA256 over "id.timestamp.body"
# --------------------------------------------------------------------------------------------
STANDARD_WEBHOOK_TOLERANCE_SECONDS = 5 * 60
_SECRET_PREFIX = "whsec_"


def generate_webhook_secret() -> str:
    return _SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _webhook_key(secret: str) -> bytes:
    raw = secret[len(_SECRET_PREFIX) :] if secret.startswith(_SECRET_PREFIX) else secret
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        raise ValueError("a Standard Webhooks secret is whsec_ followed by base64") from None


def sign_standard_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: "v1,<base64 HMAC-SHA256>"."""
    signed = f"{msg_id}.{int(timestamp)}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_webhook_key(secret), signed, hashlib.sha256).digest()).decode()


def verify_standard_webhook(
    secret: str,
    msg_id: str | None,
    timestamp: str | int | None,
    body: bytes,
    signature_header: str | None,
    *,
    tolerance_seconds: float | None = STANDARD_WEBHOOK_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when any space-separated "v1,<sig>" entry matches and the timestamp is within the
    tolerance either way (None disables the age check, e.g. to re-verify an archived delivery)."""
    if not msg_id or timestamp is None or not signature_header:
        return False
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if tolerance_seconds is not None and abs((time.time() if now is None else now) - ts) > tolerance_seconds:
        return False
    expected = sign_standard_webhook(secret, msg_id, ts, body).encode()
    ok = False
    for entry in signature_header.split():
        version, _, _ = entry.partition(",")
        if version == "v1":
            ok |= hmac.compare_digest(entry.encode(), expected)
    return ok
