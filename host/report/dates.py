"""Dates on the command line: ``--since``/``--until`` as a date, a date-time, or an age such as ``7d``."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from host.errors import UsageError

__all__ = ["parse_when"]

_AGE = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, option: str, end_of_day: bool = False, now: datetime | None = None) -> datetime:
    """A moment in local time (timezone-aware).

    ``2025-03-01`` is that day's start (its end with ``end_of_day``, so ``--until 2025-03-01``
    includes the day); ``2025-03-01T14:30`` (or with a space, or a UTC offset) is that moment;
    ``30m``, ``12h``, ``7d``, ``2w`` are that long before now.

    Raises:
        UsageError: anything else, naming ``option`` and the accepted forms.
    """
    raw = text.strip()
    now = now or datetime.now().astimezone()
    age = _AGE.fullmatch(raw)
    if age:
        return now - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
    try:
        if len(raw) == 10:
            day = datetime.strptime(raw, "%Y-%m-%d")
            return datetime.combine(day.date(), time.max if end_of_day else time.min).astimezone()
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(
            f"{option} {text!r}: use a date (2025-03-01), a date-time (2025-03-01T14:30) or an age (12h, 7d, 2w)"
        ) from None
    return moment if moment.tzinfo else moment.astimezone()
