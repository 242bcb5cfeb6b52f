"""Stand-in objects for PostgreSQL values that Python's own types cannot hold.

The codec decodes a value to the natural Python type whenever that type can hold it
exactly (``datetime.date``, ``datetime.datetime``, ``timedelta``, lists, ...), and to
one of these small immutable objects otherwise.  The encoder accepts them back and
writes the very bytes they came from, so ``encode(decode(b)) == b``.

=================  ===========================================================
``PgDate``         date outside 0001-01-01..9999-12-31, or +/-infinity
                   (``days`` since 2000-01-01, the wire value)
``PgTimestamp``    timestamp / timestamptz outside Python's range, or +/-infinity
                   (``micros`` since 2000-01-01 00:00 UTC, the wire value)
``PgTime``         time / timetz 24:00:00 (``micros`` since midnight; ``offset``
                   in seconds east of UTC for timetz, None for time)
``PgInterval``     interval with months or days (or PostgreSQL 17's infinities),
                   the three wire fields kept apart
``PgRange``        a range value (bounds None when infinite)
``PgMultirange``   a multirange: a tuple of PgRange
``PgArray``        an array with a lower bound other than 1 (nested lists + bounds),
                   or whose has-nulls flag is set although no element is NULL
``PgRecord``       a composite value (a tuple) that carries its field type OIDs
=================  ===========================================================

Each has value equality and a hash, and is constructed from its wire fields, so any
value PostgreSQL can hold has a Python form.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

__all__ = ["PgDate", "PgTimestamp", "PgTime", "PgInterval", "PgRange", "PgMultirange",
           "PgArray", "PgRecord", "INT32_MAX", "INT32_MIN", "INT64_MAX", "INT64_MIN"]

INT32_MAX = 2**31 - 1
INT32_MIN = -2**31
INT64_MAX = 2**63 - 1
INT64_MIN = -2**63

_PG_EPOCH_ORDINAL = _dt.date(2000, 1, 1).toordinal()


def _civil_from_days(days: int) -> Tuple[int, int, int]:
    """Proleptic Gregorian (year, month, day) for days since 2000-01-01, any year.

    Year 0 is 1 BC, as in ISO 8601 (PostgreSQL shows it as "0001 BC").
    """
    # Howard Hinnant's days-to-civil algorithm, on days since 0000-03-01.
    z = days + 730425  # 2000-01-01 is day 730425 after 0000-03-01
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


def _pg_date_text(days: int) -> str:
    y, m, d = _civil_from_days(days)
    if y <= 0:
        return f"{1 - y:04d}-{m:02d}-{d:02d} BC"
    return f"{y:04d}-{m:02d}-{d:02d}"


@dataclass(frozen=True)
class PgDate:
    """A date Python's ``datetime.date`` cannot hold: BC, after 9999, or infinite.

    ``days`` is the wire value, days since 2000-01-01; ``PgDate.INFINITY`` and
    ``PgDate.NEG_INFINITY`` are PostgreSQL's ``'infinity'`` and ``'-infinity'``.
    """
    days: int

    @property
    def is_infinite(self) -> bool:
        return self.days in (INT32_MAX, INT32_MIN)

    def ymd(self) -> Tuple[int, int, int]:
        """(year, month, day), astronomical year numbering (0 = 1 BC)."""
        if self.is_infinite:
            raise ValueError("an infinite date has no year")
        return _civil_from_days(self.days)

    def isoformat(self) -> str:
        """PostgreSQL's text form (ISO DateStyle): '4713-01-01 BC', 'infinity'."""
        if self.days == INT32_MAX:
            return "infinity"
        if self.days == INT32_MIN:
            return "-infinity"
        return _pg_date_text(self.days)

    def __repr__(self) -> str:
        return f"PgDate({self.days})"

    __str__ = isoformat


PgDate.INFINITY = PgDate(INT32_MAX)
PgDate.NEG_INFINITY = PgDate(INT32_MIN)


@dataclass(frozen=True)
class PgTimestamp:
    """A timestamp (with or without time zone) outside Python's range, or infinite.

    ``micros`` is the wire value: microseconds since 2000-01-01 00:00 (UTC for
    timestamptz).  ``PgTimestamp.INFINITY`` / ``NEG_INFINITY`` are the infinities.
    """
    micros: int

    @property
    def is_infinite(self) -> bool:
        return self.micros in (INT64_MAX, INT64_MIN)

    def isoformat(self) -> str:
        if self.micros == INT64_MAX:
            return "infinity"
        if self.micros == INT64_MIN:
            return "-infinity"
        days, us = divmod(self.micros, 86_400_000_000)
        secs, us = divmod(us, 1_000_000)
        text = _pg_date_text(days)
        bc = text.endswith(" BC")
        if bc:
            text = text[:-3]
        text += f" {secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        if us:
            text += f".{us:06d}".rstrip("0")
        return text + (" BC" if bc else "")

    def __repr__(self) -> str:
        return f"PgTimestamp({self.micros})"

    __str__ = isoformat


PgTimestamp.INFINITY = PgTimestamp(INT64_MAX)
PgTimestamp.NEG_INFINITY = PgTimestamp(INT64_MIN)


@dataclass(frozen=True)
class PgTime:
    """A time of day Python's ``datetime.time`` cannot hold: 24:00:00.

    ``micros`` since midnight; ``offset`` is the UTC offset in seconds *east* of
    Greenwich (Python's sign; the wire uses the opposite) for timetz, None for time.
    """
    micros: int
    offset: Optional[int] = None

    def __repr__(self) -> str:
        extra = "" if self.offset is None else f", offset={self.offset}"
        return f"PgTime(micros={self.micros}{extra})"


@dataclass(frozen=True)
class PgInterval:
    """An interval with its three wire fields kept apart.

    Intervals with ``months == days == 0`` decode to ``datetime.timedelta``; all
    others to this.  ``PgInterval.INFINITY`` / ``NEG_INFINITY`` are PostgreSQL 17's.
    """
    months: int = 0
    days: int = 0
    micros: int = 0

    @property
    def is_infinite(self) -> bool:
        return self in (PgInterval.INFINITY, PgInterval.NEG_INFINITY)

    def __repr__(self) -> str:
        return f"PgInterval(months={self.months}, days={self.days}, micros={self.micros})"


PgInterval.INFINITY = PgInterval(INT32_MAX, INT32_MAX, INT64_MAX)
PgInterval.NEG_INFINITY = PgInterval(INT32_MIN, INT32_MIN, INT64_MIN)


@dataclass(frozen=True)
class PgRange:
    """A range value.  ``lower``/``upper`` None means unbounded (infinite).

    ``PgRange(1, 5)`` is ``[1,5)``; an unbounded side is never inclusive (as in
    the server; normalized on construction).  ``PgRange.EMPTY`` is the empty range.
    Discrete ranges are not canonicalized: the server sends ``[1,6)`` for ``[1,5]``.
    """
    lower: Any = None
    upper: Any = None
    lower_inc: bool = True
    upper_inc: bool = False
    empty: bool = False

    def __post_init__(self):
        # As in the server: an infinite bound is never inclusive, and an empty
        # range has no bounds.  Normalizing here keeps equality meaningful.
        if self.empty:
            for name in ("lower", "upper"):
                object.__setattr__(self, name, None)
            object.__setattr__(self, "lower_inc", False)
            object.__setattr__(self, "upper_inc", False)
            return
        if self.lower is None and self.lower_inc:
            object.__setattr__(self, "lower_inc", False)
        if self.upper is None and self.upper_inc:
            object.__setattr__(self, "upper_inc", False)

    def __repr__(self) -> str:
        if self.empty:
            return "PgRange.EMPTY"
        return (f"PgRange({self.lower!r}, {self.upper!r}, lower_inc={self.lower_inc}, "
                f"upper_inc={self.upper_inc})")

    def __str__(self) -> str:
        if self.empty:
            return "empty"
        lo = "" if self.lower is None else str(self.lower)
        hi = "" if self.upper is None else str(self.upper)
        return ("[" if self.lower_inc else "(") + lo + "," + hi + ("]" if self.upper_inc else ")")


PgRange.EMPTY = PgRange(None, None, False, False, True)


@dataclass(frozen=True)
class PgMultirange:
    """A multirange: its ranges in order (as the server sends them)."""
    ranges: Tuple[PgRange, ...] = ()

    def __init__(self, ranges=()):
        object.__setattr__(self, "ranges", tuple(ranges))

    def __iter__(self):
        return iter(self.ranges)

    def __len__(self) -> int:
        return len(self.ranges)

    def __repr__(self) -> str:
        return f"PgMultirange({list(self.ranges)!r})"


def _freeze(v):
    return tuple(_freeze(x) for x in v) if isinstance(v, list) else v


@dataclass(frozen=True, eq=False)
class PgArray:
    """An array a plain list cannot describe exactly.

    ``values`` is the nested list (as for an ordinary array), ``lower`` the lower
    bound of each dimension (``()``: all 1), e.g. ``PgArray([1, 2], (0,))`` is
    ``'[0:1]={1,2}'``.  ``hasnull`` keeps the wire's has-nulls flag when it is set
    although no element is NULL: the server sends that for an array whose NULLs were
    replaced in place (``UPDATE t SET a[2] = 5``), and it must re-encode the same.
    """
    values: list
    lower: Tuple[int, ...] = field(default=())
    hasnull: bool = False

    def __init__(self, values, lower=(), hasnull=False):
        object.__setattr__(self, "values", list(values))
        object.__setattr__(self, "lower", tuple(lower))
        object.__setattr__(self, "hasnull", bool(hasnull))

    def __eq__(self, other):
        if not isinstance(other, PgArray):
            return NotImplemented
        return (self.lower == other.lower and self.hasnull == other.hasnull
                and self.values == other.values)

    def __hash__(self):
        return hash((_freeze(self.values), self.lower, self.hasnull))

    def __repr__(self) -> str:
        extra = ", hasnull=True" if self.hasnull else ""
        return f"PgArray({self.values!r}, lower={self.lower!r}{extra})"


class PgRecord(tuple):
    """A composite value: a tuple of field values that remembers its field type OIDs.

    Decoded records carry the OIDs from the wire, so they re-encode byte for byte
    (also for an anonymous ``record`` column, whose fields the server describes).
    Equality is that of the tuple plus the OIDs.
    """
    def __new__(cls, values=(), oids=()):
        self = super().__new__(cls, values)
        self.oids = tuple(oids)
        if self.oids and len(self.oids) != len(self):
            raise ValueError(f"{len(self)} values but {len(self.oids)} field OIDs")
        return self

    def __eq__(self, other):
        if isinstance(other, PgRecord):
            return tuple.__eq__(self, other) and self.oids == other.oids
        return tuple.__eq__(self, other)

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self):
        return tuple.__hash__(self)

    def __repr__(self) -> str:
        return f"PgRecord({tuple(self)!r}, oids={self.oids!r})"

    def __reduce__(self):
        return (PgRecord, (tuple(self), self.oids))
