"""STOP/START keyword matching: case, surrounding whitespace and punctuation are ignored."""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Iterable
from typing import Literal

DEFAULT_STOP = (
    "stop",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "stopall",
    "parar",
    "cancelar",
    "alto",
    "stopp",
    "arrêt",
    "arret",
    "basta",
)
DEFAULT_START = ("start", "unstop", "subscribe")
_STRIP = string.whitespace + string.punctuation + "¡¿«»“”‘’…。！？"


def normalise(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip(_STRIP).casefold()


def match(
    body: str | None, extra_stop: Iterable[str] = (), extra_start: Iterable[str] = ()
) -> Literal["stop", "start"] | None:
    """The whole message must be the keyword: 'stop' opts out, 'please stop calling me' does not."""
    if not body:
        return None
    word = normalise(body)
    if word in {normalise(w) for w in (*DEFAULT_STOP, *extra_stop)}:
        return "stop"
    if word in {normalise(w) for w in (*DEFAULT_START, *extra_start)}:
        return "start"
    return None
