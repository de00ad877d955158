"""Built-in generated sequence-to-sequence tasks: learnable, offline, any size, deterministic for a seed.

- dates: a date written in one of many human forms -> its ISO form::

      "the 3rd of March, 2021"  -> "2021-03-03"
      "Wed 03/03/2021"          -> "2021-03-03"   (numeric forms are day first)

  Dates are drawn uniformly from 1900-01-01 .. 2099-12-31; the case of the
  words is varied (lower, Title, UPPER).
- reverse: a string of letters -> the same letters reversed ("abcd" -> "dcba").
"""

from __future__ import annotations

import datetime as dt
from typing import Callable

import numpy as np

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FIRST, LAST = dt.date(1900, 1, 1).toordinal(), dt.date(2099, 12, 31).toordinal()
TASKS = ("dates", "reverse")


def ordinal(day: int) -> str:
    """1 -> "1st", 2 -> "2nd", 11 -> "11th", 23 -> "23rd"."""
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _month(d: dt.date, short: bool) -> str:
    name = MONTHS[d.month - 1]
    return name[:3] if short else name


def _weekday(d: dt.date, short: bool) -> str:
    name = WEEKDAYS[d.weekday()]
    return name[:3] if short else name


# Each form writes a date; the model must learn to read all of them.
DATE_FORMS: tuple[Callable[[dt.date], str], ...] = (
    lambda d: f"{d.day} {_month(d, False)} {d.year}",
    lambda d: f"{d.day:02d} {_month(d, False)} {d.year}",
    lambda d: f"{d.day} {_month(d, True)} {d.year}",
    lambda d: f"{ordinal(d.day)} {_month(d, False)} {d.year}",
    lambda d: f"the {ordinal(d.day)} of {_month(d, False)}, {d.year}",
    lambda d: f"{ordinal(d.day)} of {_month(d, False)} {d.year}",
    lambda d: f"{_month(d, False)} {d.day}, {d.year}",
    lambda d: f"{_month(d, False)} {ordinal(d.day)}, {d.year}",
    lambda d: f"{_month(d, True)} {d.day} {d.year}",
    lambda d: f"{_month(d, True)}. {d.day}, {d.year}",
    lambda d: f"{_weekday(d, False)}, {_month(d, False)} {d.day}, {d.year}",
    lambda d: f"{_weekday(d, True)} {d.day} {_month(d, True)} {d.year}",
    lambda d: f"{_weekday(d, False)} the {ordinal(d.day)} of {_month(d, False)} {d.year}",
    lambda d: f"{d.day:02d}/{d.month:02d}/{d.year}",
    lambda d: f"{d.day}/{d.month}/{d.year}",
    lambda d: f"{d.day}.{d.month}.{d.year}",
    lambda d: f"{d.day:02d}-{d.month:02d}-{d.year}",
    lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",
    lambda d: f"{d.year} {_month(d, False)} {d.day}",
    lambda d: f"{d.day}-{_month(d, True)}-{d.year}",
)
CASES: tuple[Callable[[str], str], ...] = (str.lower, lambda s: s, str.upper)


def random_dates(count: int, rng: np.random.Generator) -> list[dt.date]:
    days = rng.integers(FIRST, LAST + 1, size=count)
    return [dt.date.fromordinal(int(d)) for d in days]


def date_pairs(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """`count` (written date, ISO date) pairs, e.g. ("the 3rd of March, 2021", "2021-03-03")."""
    rng = np.random.default_rng(seed)
    forms = rng.integers(0, len(DATE_FORMS), size=count)
    cases = rng.integers(0, len(CASES), size=count)
    return [(CASES[c](DATE_FORMS[f](d)), d.isoformat())
            for d, f, c in zip(random_dates(count, rng), forms, cases)]


def reverse_pairs(count: int, seed: int = 0, alphabet: str = "abcdefgh",
                  min_len: int = 1, max_len: int = 8) -> list[tuple[str, str]]:
    """`count` (letters, reversed letters) pairs, lengths uniform in [min_len, max_len]."""
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len; got {min_len}, {max_len}")
    rng = np.random.default_rng(seed)
    letters = np.array(list(alphabet))
    pairs = []
    for n in rng.integers(min_len, max_len + 1, size=count):
        s = "".join(rng.choice(letters, size=int(n)))
        pairs.append((s, s[::-1]))
    return pairs


def generated_pairs(task: str, count: int, seed: int = 0) -> list[tuple[str, str]]:
    """Pairs of a built-in task by name ("dates" or "reverse")."""
    if task == "dates":
        return date_pairs(count, seed)
    if task == "reverse":
        return reverse_pairs(count, seed)
    raise ValueError(f"unknown generated task {task!r}; choose one of {', '.join(TASKS)}")
