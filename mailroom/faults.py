"""Fault points for the crash tests: at a named point, the process kills itself (SIGKILL, no cleanup) or raises.

``BILLING_MAILROOM_CRASH_AT=after_commit:3`` kills the process the third time it reaches ``after_commit``;
``after_send:2:raise`` raises ``InjectedFault`` there instead (an unexpected error in a loop), and ``…:exit``
raises ``SystemExit`` (which ends a thread without a word: the silent death the daemon must notice). Unset
(always, outside the tests), ``crash_point`` only reads a dictionary.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

CRASH_ENV = "BILLING_MAILROOM_CRASH_AT"
_reached: Counter[str] = Counter()


class InjectedFault(RuntimeError):
    """Raised at a fault point asked to ``raise``: stands for any unforeseen error."""


def crash_point(name: str) -> None:
    """SIGKILL this process, or raise, if the environment asks for a fault at ``name`` now."""
    target = os.environ.get(CRASH_ENV)
    if not target:
        return
    point, _, rest = target.partition(":")
    if point != name:
        return
    count, _, action = rest.partition(":")
    _reached[name] += 1
    if _reached[name] != int(count or 1):
        return
    if action == "raise":
        raise InjectedFault(f"fault injected at {name}")
    if action == "exit":
        raise SystemExit(f"fault injected at {name}")
    os.kill(os.getpid(), signal.SIGKILL)
