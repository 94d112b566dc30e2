"""The one table that turns provider error codes into a FailureClass.

Twilio codes arrive two ways: synchronously on a REST error (code + HTTP status), and later as the
`ErrorCode` of a failed/undelivered status callback (code only). Both go through `classify_twilio`,
so a code means the same thing whichever way it reached us.

Retrying is the caller's decision; the class only says whether a retry can help. For callback codes
"transient" means "send it again on the same channel", so only codes where a second attempt has a
real chance are transient. Everything that would fail the same way again is permanent (or more
specific), which lets the caller fall back to email without wasting the retry budget.

The descriptions are ours, not Twilio's exact titles (several titles are unverified, see FACTS §5
and §8); the WhatsApp-side meaning comes from Twilio's Twilio<->WhatsApp error mapping table.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from channels.base import FailureClass as F

_TWILIO_ROWS: tuple[tuple[int, F, str], ...] = (
    # -- REST API (synchronous, no Message is created) ---------------------------------------
    (20003, F.BAD_CREDENTIALS, "authentication failed: wrong AccountSid/AuthToken or API key"),
    (20005, F.BAD_CREDENTIALS, "account not active: nothing can be sent until the tenant fixes it"),
    # A 404 is never fixed by retrying. On a send it means the account (or a Messaging Service)
    # does not exist; a reconciler fetching a message gets it too and decides for itself.
    (20404, F.PERMANENT, "resource not found"),
    (20429, F.RATE_LIMITED, "too many concurrent REST requests"),
    (20500, F.TRANSIENT, "Twilio internal error"),
    (20503, F.TRANSIENT, "Twilio service unavailable"),
    (21211, F.INVALID_RECIPIENT, "invalid 'To' number"),
    (21214, F.INVALID_RECIPIENT, "'To' number cannot be reached"),
    # 21606 is about our sender (From cannot send on this channel): a tenant configuration
    # problem, not the recipient's, so it must not mark the recipient as invalid.
    (21603, F.PERMANENT, "a 'From' number is required"),
    (21604, F.PERMANENT, "a 'To' number is required"),
    (21606, F.PERMANENT, "'From' number is not capable of sending on this channel"),
    (21608, F.INVALID_RECIPIENT, "trial account: 'To' is not a verified number"),
    (21610, F.OPTED_OUT, "recipient has unsubscribed (STOP)"),
    (21611, F.RATE_LIMITED, "'From' has too many queued messages"),
    (21612, F.INVALID_RECIPIENT, "'To' is not reachable on this route"),
    (21614, F.INVALID_RECIPIENT, "'To' is not a valid mobile/WhatsApp-capable number"),
    (21609, F.PERMANENT, "invalid StatusCallback URL"),
    (21617, F.PERMANENT, "body exceeds 1600 characters"),
    (21619, F.PERMANENT, "a text body, media or content template is required"),
    (21620, F.MEDIA_INVALID, "invalid media URL"),
    (21623, F.MEDIA_INVALID, "too many media URLs"),
    # Content API templates: unknown/unapproved ContentSid or variables that do not fit it.
    (21655, F.TEMPLATE_INVALID, "ContentSid is invalid or not approved"),
    (21656, F.TEMPLATE_INVALID, "ContentVariables are invalid for this template"),
    (21701, F.PERMANENT, "Messaging Service SID is invalid (tenant configuration)"),
    (21910, F.PERMANENT, "From and To are not on the same channel"),
    # -- Status callbacks (the Message exists, then fails with ErrorCode) --------------------
    (30001, F.RATE_LIMITED, "queue overflow: too many messages queued for the sender"),
    (30002, F.PERMANENT, "account suspended"),
    # 30003 (unreachable handset) is deliberately *permanent*: by the time it arrives Twilio and
    # the carrier/WhatsApp have already retried for the message's validity period, so an
    # immediate re-send fails the same way and only delays the email fallback. It is not
    # invalid_recipient either: the number is real and may be reachable tomorrow, so it must not
    # be blacklisted.
    (30003, F.PERMANENT, "unreachable destination handset"),
    (30004, F.PERMANENT, "message blocked by the recipient or carrier"),
    (30005, F.INVALID_RECIPIENT, "unknown destination handset"),
    (30006, F.INVALID_RECIPIENT, "landline or unreachable carrier"),
    # Filtered content fails again when re-sent unchanged.
    (30007, F.PERMANENT, "message filtered"),
    (30008, F.TRANSIENT, "unknown delivery error"),
    (30410, F.TRANSIENT, "provider timeout"),
    (63001, F.PERMANENT, "channel could not authenticate (sender configuration)"),
    (63003, F.INVALID_RECIPIENT, "channel could not find the 'To' address"),
    (63005, F.PERMANENT, "channel did not accept the content"),
    (63007, F.PERMANENT, "no channel for the 'From' address (sender configuration)"),
    (63008, F.PERMANENT, "channel misconfigured in Twilio"),
    (63012, F.TRANSIENT, "channel provider internal error"),
    (63013, F.PERMANENT, "channel policy violation"),
    (63015, F.INVALID_RECIPIENT, "sandbox: recipient has not joined"),
    (63016, F.WINDOW_CLOSED, "outside the 24h window: a template is required"),
    (63017, F.RATE_LIMITED, "account-wide rate limit exceeded"),
    (63018, F.RATE_LIMITED, "WhatsApp sender rate limit exceeded"),
    (63019, F.MEDIA_INVALID, "media failed to download"),
    (63020, F.PERMANENT, "WhatsApp Business Manager account error"),
    (63021, F.PERMANENT, "channel rejected the content as invalid"),
    (63022, F.PERMANENT, "invalid WhatsApp sender certificate"),
    # "Channel generic error": WhatsApp's catch-all, usually a hiccup on Meta's side. One more
    # attempt is cheap and the retry budget still bounds it.
    (63023, F.TRANSIENT, "channel generic error"),
    (63024, F.INVALID_RECIPIENT, "invalid message recipient"),
    (63027, F.TEMPLATE_INVALID, "template does not exist for this language/locale"),
    (63028, F.TEMPLATE_INVALID, "template parameter count mismatch"),
    (63029, F.TEMPLATE_INVALID, "template text too long once variables are filled in"),
    (63030, F.PERMANENT, "parameter not supported by this channel"),
    # 63032 (WhatsApp 472: the user is part of a Meta experiment). The recipient is valid, so
    # not invalid_recipient; this message just cannot go to them now. Permanent -> fall back.
    (63032, F.PERMANENT, "WhatsApp will not deliver this message to this user"),
)

TWILIO_CODES: Mapping[int, F] = MappingProxyType({code: cls for code, cls, _ in _TWILIO_ROWS})
TWILIO_REASONS: Mapping[int, str] = MappingProxyType({code: why for code, _, why in _TWILIO_ROWS})

# SendGrid's v3 API speaks only HTTP statuses (its JSON errors carry no codes).
SENDGRID_STATUSES: Mapping[int, F] = MappingProxyType(
    {
        400: F.PERMANENT,  # malformed request: the same body fails again
        # 401 is a bad key. 403 is a key without the mail.send scope, an unverified sender identity or
        # a temporary block for too many bad requests: all fixed by the tenant in their SendGrid
        # settings, so they are reported as credentials problems rather than retried.
        401: F.BAD_CREDENTIALS,
        403: F.BAD_CREDENTIALS,
        404: F.PERMANENT,
        406: F.PERMANENT,
        408: F.TRANSIENT,
        413: F.PERMANENT,  # payload too large: shrinking it is not the retry's job
        429: F.RATE_LIMITED,
        451: F.PERMANENT,  # data residency restriction
    }
)


def _by_http_status(http_status: int | None) -> F:
    if http_status is None:
        return F.PERMANENT
    if http_status == 401:
        return F.BAD_CREDENTIALS
    if http_status == 429:
        return F.RATE_LIMITED
    if http_status == 408 or http_status >= 500:
        return F.TRANSIENT
    return F.PERMANENT


def _as_code(code: int | str | None) -> int | None:
    if code is None or code == "":
        return None
    try:
        return int(code)
    except (TypeError, ValueError):
        return None


def classify_twilio(code: int | str | None, http_status: int | None = None) -> F:
    """Class of a Twilio error code (REST `code`, or a callback's `ErrorCode` string).

    A known code wins. Otherwise the HTTP status decides (callbacks have none: permanent).
    The SDK reports the HTTP status as the code when a body has none, so 3-digit codes simply
    fall through to the status rule.
    """
    known = TWILIO_CODES.get(_as_code(code))  # type: ignore[arg-type]
    if known is not None:
        return known
    return _by_http_status(http_status)


def classify_sendgrid(http_status: int | None) -> F:
    if http_status in SENDGRID_STATUSES:
        return SENDGRID_STATUSES[http_status]  # type: ignore[index]
    return _by_http_status(http_status)


def twilio_more_info(code: int | str | None) -> str | None:
    """Twilio's documentation URL for an error code, as its REST errors give it in `more_info`
    (status callbacks carry only the ErrorCode, so this is how their `more_info` is filled)."""
    number = _as_code(code)
    return None if number is None else f"https://www.twilio.com/docs/errors/{number}"


def twilio_reason(code: int | str | None) -> str | None:
    """Our short description of a known Twilio code (for logs and the decision trail)."""
    return TWILIO_REASONS.get(_as_code(code))  # type: ignore[arg-type]
