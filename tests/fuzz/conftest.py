"""What both fuzz modules share: one seeded world per module instead of a clean slate per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.conftest import truncate_all
from tests.support.providers import Emulator, emulator_handle


@pytest.fixture(scope="module", autouse=True)
async def _clean_tables(database: str) -> AsyncIterator[None]:
    """Overrides tests/conftest.py's per-test truncation: every test of a fuzz module shares one seeded
    world (one pytest item per operation; seeding each would add ~1 s x 46). Same cleaning, once, at
    the end of the module."""
    yield
    await truncate_all()


@pytest.fixture(scope="module")
def fuzz_emulator(emulator_server: Any) -> Iterator[Emulator]:
    """tests.support.providers' `emulator`, for the module rather than one test."""
    with emulator_handle(emulator_server) as handle:
        yield handle
