"""Sender pacing books slots (app/core/ratelimit.py `reserve`): a send turned away is given the next free
slot, deferred sends are spaced one interval apart, and a booking lets its holder through once it is due."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from app.core.ratelimit import MemoryLimiter, RedisLimiter
from tests.conftest import REDIS_TEST_URL, TEST_DB_NAME

RATE = 20.0  # one slot every 50 ms


@pytest.fixture(params=["redis", "memory"])
def limiter(request, redis_client):
    if request.param == "redis":
        return RedisLimiter(REDIS_TEST_URL, TEST_DB_NAME)
    return MemoryLimiter()


async def test_deferred_sends_get_consecutive_slots_and_their_bookings_let_them_through(limiter):
    sender = f"wa:{secrets.token_hex(4)}"
    assert await limiter.reserve(sender, "first", RATE) == (True, 0.0)
    second = await limiter.reserve(sender, "second", RATE)
    third = await limiter.reserve(sender, "third", RATE)
    assert second[0] is False and third[0] is False
    # Booked one interval apart: they do not all come back at the same moment.
    assert 0.03 < second[1] <= 0.05 and 0.08 < third[1] <= 0.1
    early = await limiter.reserve(sender, "second", RATE)
    assert early[0] is False and 0 < early[1] <= second[1]  # the same booking, not a new one further out
    await asyncio.sleep(second[1] + 0.01)
    assert await limiter.reserve(sender, "second", RATE) == (True, 0.0)
    # The booking is used up: "third" still waits for its own slot, and a newcomer queues behind it.
    third_again = await limiter.reserve(sender, "third", RATE)
    newcomer = await limiter.reserve(sender, "fourth", RATE)
    assert third_again[0] is False and newcomer[0] is False and newcomer[1] > third_again[1] + 0.03


async def test_acquire_still_books_nothing(limiter):
    key = f"api:{secrets.token_hex(4)}"
    assert (await limiter.acquire(key, RATE))[0] is True
    refused, wait = await limiter.acquire(key, RATE)
    again = await limiter.acquire(key, RATE)
    assert refused is False and again[0] is False and abs(again[1] - wait) < 0.02  # asking again books no slot
