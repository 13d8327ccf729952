"""The worklist counts, cached a moment per set of teams: on a store of 100,000 tickets they cost more than the
rest of the page together, and every agent of a team asks for the same ones.

A count older than ``FRESH_SECONDS`` is recomputed in the background while the old one is served (it is never
more than a few seconds behind; the page's live refresh asks again after every change); only the very first
asker of a set of teams waits for it. An agent's own count is not cached (``core.tickets.mine_count``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from sqlalchemy.orm import Session, sessionmaker

from core.tickets import team_counts

logger = logging.getLogger(__name__)
FRESH_SECONDS = 2.0


class CountsCache:
    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._values: dict[tuple[str, ...], tuple[float, dict[str, Counter[str]]]] = {}
        self._refreshing: set[tuple[str, ...]] = set()

    def __call__(self, teams: tuple[str, ...]) -> dict[str, Counter[str]]:
        with self._lock:
            cached = self._values.get(teams)
            stale = cached is None or time.monotonic() - cached[0] > FRESH_SECONDS
            if cached is not None and stale and teams not in self._refreshing:
                self._refreshing.add(teams)
                threading.Thread(target=self._refresh, args=(teams,), name="counts", daemon=True).start()
        if cached is not None:
            return cached[1]
        return self._compute(teams)

    def _compute(self, teams: tuple[str, ...]) -> dict[str, Counter[str]]:
        with self._factory() as session:
            value = team_counts(session, teams)
        with self._lock:
            self._values[teams] = (time.monotonic(), value)
        return value

    def _refresh(self, teams: tuple[str, ...]) -> None:
        try:
            self._compute(teams)
        except Exception:
            logger.exception("worklist counts: refreshing failed; the previous ones stay")
        finally:
            with self._lock:
                self._refreshing.discard(teams)
