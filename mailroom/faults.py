"""Crash points for the fault tests: the process kills itself (SIGKILL, no cleanup) at a named point.

``BILLING_MAILROOM_CRASH_AT=after_commit:3`` kills the process the third time it reaches ``after_commit``. Unset
(always, outside the tests), ``crash_point`` only reads a dictionary.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

CRASH_ENV = "BILLING_MAILROOM_CRASH_AT"
_reached: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """SIGKILL this process if the environment asks for a crash at ``name`` now."""
    target = os.environ.get(CRASH_ENV)
    if not target:
        return
    point, _, count = target.partition(":")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
