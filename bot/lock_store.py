"""Rasa's Redis lock store, made safe for several Rasa servers sharing conversations.

Rasa serves one conversation's messages one at a time, in the order they arrived, with a ticket lock per
conversation. Stock ``RedisLockStore`` keeps that lock in Redis but changes it by reading it, changing it in the
server's memory and writing it back: two servers issuing a ticket for one conversation at the same moment can
both draw the same number (and process the conversation at once), and a server deleting a lock it thinks idle
can drop the ticket another has just drawn (whose message then fails). ``ClusterLockStore`` makes every change
one Redis transaction (``WATCH``/``MULTI``: a change that raced another is done again on the new value), and
gives each lock a Redis expiry after its last ticket's. A ticket lives a few seconds and is renewed by its
server while its message waits or is processed, so the tickets of a server that died go away within seconds
(stock tickets live a minute: a conversation caught on a dead server would wait that long). Drawing a ticket
and giving it back, twice a message, are each one Lua script run by Redis (one round trip instead of three); the
rarer changes (renewals) are done in Python within a ``WATCH`` transaction. Both keep Rasa's format of the lock,
which Rasa's own code reads.

Configured in ``endpoints.yml`` (``make cluster`` writes it)::

    lock_store:
      type: bot.lock_store.ClusterLockStore
      url: redis://127.0.0.1:6379/0

A message waiting for its conversation looks every ``WAIT_SECONDS`` (stock: every second).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)
T = TypeVar("T")
KEY_PREFIX = "billing"  # alphanumeric, as Rasa requires
TICKET_SECONDS = 5.0  # a ticket not renewed for this long is dropped: its server died
RENEW_SECONDS = 1.0  # how often a live server renews the tickets of the messages it holds
WAIT_SECONDS = 0.05  # how often a message waiting for its conversation looks whether its turn came


# Rasa's TicketLock changes, run by Redis on the lock's JSON (tickets are JSON strings inside it, as Rasa writes
# them). A ticket has expired when the time is past its expiry; the lock's key expires after its last ticket.
_KEEP_LOCK = """
local function keep(key, conversation_id, tickets, now)
  if #tickets == 0 then
    redis.call('DEL', key)
    return
  end
  local encoded, last = {}, now
  for i, ticket in ipairs(tickets) do
    encoded[i] = cjson.encode(ticket)
    if ticket.expires > last then last = ticket.expires end
  end
  local stored = cjson.encode({conversation_id = conversation_id, tickets = encoded})
  redis.call('SET', key, stored, 'EX', math.max(1, math.ceil(last - now)))
end
local function live_tickets(stored, now, drop)
  local tickets = {}
  if stored then
    for _, text in ipairs(cjson.decode(stored).tickets) do
      local ticket = cjson.decode(text)
      if ticket.expires >= now and ticket.number ~= drop then tickets[#tickets + 1] = ticket end
    end
  end
  return tickets
end
"""
# KEYS[1]: the lock; ARGV: now, the ticket's lifetime, the conversation id. Returns the ticket's number.
ISSUE_SCRIPT = _KEEP_LOCK + """
local now = tonumber(ARGV[1])
local tickets = live_tickets(redis.call('GET', KEYS[1]), now, nil)
local number = 0
if #tickets > 0 then number = tickets[#tickets].number + 1 end
tickets[#tickets + 1] = {number = number, expires = now + tonumber(ARGV[2])}
keep(KEYS[1], ARGV[3], tickets, now)
return number
"""
# KEYS[1]: the lock; ARGV: now, the ticket's number, the conversation id.
FINISH_SCRIPT = _KEEP_LOCK + """
local now = tonumber(ARGV[1])
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
keep(KEYS[1], ARGV[3], live_tickets(stored, now, tonumber(ARGV[2])), now)
return 1
"""


def redis_options(url: str) -> dict[str, Any]:
    """``RedisLockStore``'s arguments from a URL: ``redis://[user:password@]host[:port][/db]`` (``rediss://``: TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(f"{url!r} is not a Redis URL (redis://host:port/db)")
    database = parts.path.strip("/") or "0"
    if not database.isdigit():
        raise ValueError(f"{url!r}: the database after the host is a number (redis://host:port/0)")
    return {"host": parts.hostname, "port": parts.port or 6379, "db": int(database),
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
            "use_ssl": parts.scheme == "rediss"}


class ClusterLockStore(RedisLockStore):
    """``RedisLockStore`` whose every change of a lock is atomic (see the module's docstring)."""

    def __init__(self, endpoint_config: EndpointConfig | None = None, url: str = "redis://127.0.0.1:6379/0",
                 key_prefix: str = KEY_PREFIX) -> None:
        if endpoint_config is not None:  # how Rasa builds a lock store named by its class
            url = endpoint_config.url or url
            key_prefix = endpoint_config.kwargs.get("key_prefix", key_prefix)
        super().__init__(key_prefix=key_prefix, **redis_options(url))
        self._issue = self.red.register_script(ISSUE_SCRIPT)
        self._finish = self.red.register_script(FINISH_SCRIPT)

    def _run(self, script: Any, conversation_id: str, value: float) -> int:
        try:
            return int(script(keys=[self.key_prefix + conversation_id], args=[time.time(), value, conversation_id]))
        except redis.RedisError as error:
            raise LockError(f"the lock store (Redis) failed: {error}") from error

    def _change(self, conversation_id: str, change: Callable[[TicketLock], T]) -> T:
        """Apply ``change`` to the conversation's lock (a new one if none) in one Redis transaction, and return
        what it returned; a lock left without tickets is deleted."""
        key = self.key_prefix + conversation_id
        try:
            with self.red.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(key)
                        stored = pipe.get(key)
                        lock = (TicketLock.from_dict(json.loads(stored)) if stored
                                else TicketLock(conversation_id))
                        result = change(lock)
                        lock.remove_expired_tickets()
                        pipe.multi()
                        if lock.tickets:
                            last_expiry = max(ticket.expires for ticket in lock.tickets)
                            pipe.set(key, lock.dumps(), ex=max(1, math.ceil(last_expiry - time.time())))
                        else:
                            pipe.delete(key)
                        pipe.execute()
                        return result
                    except redis.WatchError:
                        continue  # another server changed this lock meanwhile: do it again on its new value
        except redis.RedisError as error:
            raise LockError(f"the lock store (Redis) failed: {error}") from error

    @asynccontextmanager
    async def lock(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME,
                   wait_time_in_seconds: float = WAIT_SECONDS) -> AsyncIterator[TicketLock]:
        """Rasa's ticket lock, with a ticket that lives ``TICKET_SECONDS`` and is renewed every
        ``RENEW_SECONDS`` while its message waits or is processed (``lock_lifetime`` is not used): the tickets of
        a server that died go away within seconds instead of blocking their conversations for a minute."""
        ticket = self.issue_ticket(conversation_id, TICKET_SECONDS)
        renewal = asyncio.create_task(self._renew(conversation_id, ticket))
        try:
            yield await self._acquire_lock(conversation_id, ticket, wait_time_in_seconds)
        finally:
            renewal.cancel()
            self.cleanup(conversation_id, ticket)

    async def _renew(self, conversation_id: str, number: int) -> None:
        def extend(lock: TicketLock) -> None:
            for ticket in lock.tickets:
                if ticket.number == number:
                    ticket.expires = time.time() + TICKET_SECONDS

        while True:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                self._change(conversation_id, extend)
            except LockError:
                logger.exception("conversation %s: ticket %d could not be renewed", conversation_id, number)

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        return self._run(self._issue, conversation_id, lock_lifetime)

    def update_lock(self, conversation_id: str) -> None:
        self._change(conversation_id, lambda lock: lock.remove_expired_tickets())

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        self._run(self._finish, conversation_id, ticket_number)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Done with ``ticket_number``; the lock goes with its last ticket (in the same transaction, so a ticket
        drawn meanwhile by another server is never lost)."""
        self.finish_serving(conversation_id, ticket_number)
