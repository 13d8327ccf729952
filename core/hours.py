"""Business hours: when billing agents answer chats (a YAML file: time zone, weekly hours, holidays).

Outside them the bot offers an email ticket instead of a live agent (``core.chats``). A file that cannot be read
or says something impossible raises ``ConfigurationError`` naming the file and the problem: the chat would
otherwise promise agents who are not there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from core.errors import ConfigurationError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours per weekday (0 = Monday) in ``zone``, and the holidays (closed all day)."""

    zone: ZoneInfo
    week: dict[int, tuple[time, time]]
    holidays: frozenset[date]

    def is_open(self, moment: datetime | None = None) -> bool:
        """Whether agents answer at ``moment`` (now by default)."""
        local = (moment or datetime.now(timezone.utc)).astimezone(self.zone)
        hours = self.week.get(local.weekday())
        if hours is None or local.date() in self.holidays:
            return False
        return hours[0] <= local.time() < hours[1]

    def next_opening(self, moment: datetime | None = None) -> datetime | None:
        """When agents answer next (in ``zone``), at ``moment`` if open; None if never within two weeks."""
        local = (moment or datetime.now(timezone.utc)).astimezone(self.zone)
        if self.is_open(local):
            return local
        for days in range(15):
            day = local.date() + timedelta(days=days)
            hours = self.week.get(day.weekday())
            if hours is None or day in self.holidays:
                continue
            opening = datetime.combine(day, hours[0], tzinfo=self.zone)
            if opening > local:
                return opening
        return None


def _clock(value: Any, where: str) -> time:
    if str(value) == "24:00":  # the end of the day
        return time.max
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ConfigurationError(f"{where}: {value!r} is not a time of day like 08:00 (or 24:00)") from None


def load_business_hours(path: Path) -> BusinessHours:
    """Read the business hours file (``ConfigurationError`` if it cannot be used)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigurationError(f"business hours {path}: cannot be read ({error})") from None
    if not isinstance(raw, dict):
        raise ConfigurationError(f"business hours {path}: expected a mapping with timezone, hours and holidays")
    try:
        zone = ZoneInfo(str(raw.get("timezone", "America/Toronto")))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"business hours {path}: unknown time zone {raw.get('timezone')!r}") from None
    week: dict[int, tuple[time, time]] = {}
    for name, span in (raw.get("hours") or {}).items():
        if str(name).lower() not in WEEKDAYS:
            raise ConfigurationError(f"business hours {path}: {name!r} is not a weekday (monday ... sunday)")
        if not isinstance(span, list) or len(span) != 2:
            raise ConfigurationError(f"business hours {path}: {name} needs [opening, closing], like [\"08:00\", \"20:00\"]")
        opening, closing = (_clock(value, f"business hours {path}: {name}") for value in span)
        if opening >= closing:
            raise ConfigurationError(f"business hours {path}: {name} closes before it opens")
        week[WEEKDAYS.index(str(name).lower())] = (opening, closing)
    holidays: set[date] = set()
    for value in raw.get("holidays") or []:
        try:
            holidays.add(value if isinstance(value, date) else date.fromisoformat(str(value)))
        except ValueError:
            raise ConfigurationError(f"business hours {path}: holiday {value!r} is not a date like 2026-12-25") from None
    return BusinessHours(zone, week, frozenset(holidays))
