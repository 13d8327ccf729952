"""The Rasa servers' shared lock store on the machine's Redis: tickets drawn at once by several servers are all
different and served in order; a server that died holding a ticket blocks its conversation for seconds only."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from bot.lock_store import TICKET_SECONDS, ClusterLockStore, redis_options
from tests.conftest import run_alone, unavailable

REDIS_URL = os.environ.get("BILLING_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")


@pytest.fixture
def servers() -> Iterator[list[ClusterLockStore]]:
    """Three lock stores on one Redis, as three Rasa servers have."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping()
    except redis.RedisError as error:
        unavailable(f"Redis at {REDIS_URL}", error)
    stores = [ClusterLockStore(url=REDIS_URL) for _ in range(3)]
    yield stores
    for store in stores:
        store.red.close()


def test_a_redis_url_gives_the_stores_arguments() -> None:
    assert redis_options("rediss://u:p%40ss@cache.internal:6380/2") == {
        "host": "cache.internal", "port": 6380, "db": 2, "username": "u", "password": "p@ss", "use_ssl": True}
    assert redis_options("redis://127.0.0.1")["db"] == 0
    with pytest.raises(ValueError, match="not a Redis URL"):
        redis_options("http://127.0.0.1:6379")


def test_tickets_drawn_at_once_by_several_servers_are_all_different(servers: list[ClusterLockStore]) -> None:
    conversation = f"lock-{uuid.uuid4().hex}"
    drawn: list[int] = []
    start = threading.Barrier(30)

    def draw(store: ClusterLockStore) -> None:
        start.wait()
        for _ in range(10):
            drawn.append(store.issue_ticket(conversation, 30))

    threads = [threading.Thread(target=draw, args=(servers[n % 3],)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(drawn) == list(range(min(drawn), min(drawn) + 300)), "two servers drew the same ticket"
    lock = servers[0].get_lock(conversation)
    assert lock is not None and lock.now_serving == min(drawn)
    for number in drawn:
        servers[1].cleanup(conversation, number)
    assert servers[2].get_lock(conversation) is None  # the lock goes with its last ticket


def test_tickets_drawn_and_given_back_by_redis_keep_rasas_lock_format_and_order(
    servers: list[ClusterLockStore],
) -> None:
    conversation = f"lock-{uuid.uuid4().hex}"
    first, second = servers[0].issue_ticket(conversation, 30), servers[1].issue_ticket(conversation, 30)
    assert (first, second) == (0, 1)
    servers[2].update_lock(conversation)  # a change made in Python (WATCH), on the lock the script wrote
    lock = servers[2].get_lock(conversation)  # read by Rasa's own TicketLock
    assert lock is not None and [t.number for t in lock.tickets] == [0, 1] and lock.now_serving == 0
    assert all(time.time() + 25 < t.expires <= time.time() + 30 for t in lock.tickets)
    assert 25 <= servers[0].red.ttl(servers[0].key_prefix + conversation) <= 30
    servers[0].finish_serving(conversation, first)
    assert servers[1].get_lock(conversation).now_serving == 1
    assert servers[1].issue_ticket(conversation, 30) == 2  # after the last ticket issued, not after the count
    assert servers[0].issue_ticket(conversation, -1) == 3  # a ticket whose server died long ago
    assert servers[0].issue_ticket(conversation, 30) == 3  # the next change drops it, as Rasa's does
    tickets = servers[0].get_lock(conversation).tickets
    assert [t.number for t in tickets] == [1, 2, 3] and tickets[-1].expires > time.time() + 25
    for number in (1, 2, 3):
        servers[2].finish_serving(conversation, number)
    assert servers[0].get_lock(conversation) is None and not servers[0].red.exists(servers[0].key_prefix + conversation)


def test_messages_of_one_conversation_on_two_servers_are_served_one_after_the_other(
    servers: list[ClusterLockStore],
) -> None:
    conversation = f"lock-{uuid.uuid4().hex}"
    held: list[str] = []

    async def handle(store: ClusterLockStore, name: str) -> None:
        async with store.lock(conversation):
            held.append(f"{name} in")
            await asyncio.sleep(0.2)  # the message being processed while the other waits
            held.append(f"{name} out")

    async def both() -> None:
        await asyncio.gather(handle(servers[0], "a"), handle(servers[1], "b"))

    run_alone(both())
    assert held in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])


def test_a_held_ticket_is_renewed_and_a_dead_servers_ticket_goes_within_seconds(
    servers: list[ClusterLockStore],
) -> None:
    conversation = f"lock-{uuid.uuid4().hex}"

    async def long_message() -> None:
        async with servers[0].lock(conversation):
            await asyncio.sleep(TICKET_SECONDS + 1.5)  # longer than a ticket lives: renewals keep it
            lock = servers[1].get_lock(conversation)
            assert lock is not None and lock.tickets, "the ticket of a message still processed expired"

    run_alone(long_message())
    dead = servers[2].issue_ticket(conversation, TICKET_SECONDS)  # drawn by a server that then died
    began = time.monotonic()

    async def next_message() -> None:
        async with servers[0].lock(conversation):
            pass

    run_alone(next_message())
    waited = time.monotonic() - began
    assert waited < TICKET_SECONDS + 2, f"the conversation waited {waited:.1f} s for a dead server's ticket {dead}"
