"""date, timestamp, timestamptz, time, timetz, interval.

Values outside Python's range (BC, years past 9999, infinities, 24:00:00, intervals
with months or days) decode to the stand-ins of :mod:`dumpcodec.copy.values`.
"""
from __future__ import annotations

import datetime as _dt
import struct
from typing import Dict

from ...errors import EncodeError
from ..values import (INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, PgDate, PgInterval,
                      PgTime, PgTimestamp)
from .core import (EE_AWARE, EE_NAIVE, EE_NO_OFFSET, EE_RANGE, ER_SIZE, _i4, _i8, _qi,
                   _qii, _type_error, _unpack_i4)

__all__ = ["decode_date", "encode_date", "decode_timestamp", "encode_timestamp",
           "decode_timestamptz", "encode_timestamptz", "encode_timestamptz_naive_utc",
           "decode_time", "encode_time", "decode_timetz", "encode_timetz",
           "decode_interval", "encode_interval"]

_PG_EPOCH_ORD = _dt.date(2000, 1, 1).toordinal()
_MIN_DATE = 1 - _PG_EPOCH_ORD                              # 0001-01-01
_MAX_DATE = _dt.date(9999, 12, 31).toordinal() - _PG_EPOCH_ORD
_US_DAY = 86_400_000_000
_MIN_TS = _MIN_DATE * _US_DAY
_MAX_TS = (_MAX_DATE + 1) * _US_DAY - 1
_EPOCH = _dt.datetime(2000, 1, 1)
_EPOCH_TZ = _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)
_timedelta = _dt.timedelta
_fromordinal = _dt.date.fromordinal


def decode_date(b: bytes):
    if len(b) != 4:
        raise ValueError(ER_SIZE.format(n=len(b), size=4))
    d = _unpack_i4(b)[0]
    if _MIN_DATE <= d <= _MAX_DATE:
        return _fromordinal(d + _PG_EPOCH_ORD)
    return PgDate(d)


def encode_date(v) -> bytes:
    if type(v) is _dt.date or (isinstance(v, _dt.date) and not isinstance(v, _dt.datetime)):
        return _i4.pack(v.toordinal() - _PG_EPOCH_ORD)
    if isinstance(v, PgDate):
        if INT32_MIN <= v.days <= INT32_MAX:
            return _i4.pack(v.days)
        raise EncodeError(EE_RANGE.format(value=v, name="date"))
    raise _type_error("date", "date", v)


def decode_timestamp(b: bytes):
    if len(b) != 8:
        raise ValueError(ER_SIZE.format(n=len(b), size=8))
    us = _i8.unpack(b)[0]
    if _MIN_TS <= us <= _MAX_TS:
        return _EPOCH + _timedelta(microseconds=us)
    return PgTimestamp(us)


def decode_timestamptz(b: bytes):
    if len(b) != 8:
        raise ValueError(ER_SIZE.format(n=len(b), size=8))
    us = _i8.unpack(b)[0]
    if _MIN_TS <= us <= _MAX_TS:
        return _EPOCH_TZ + _timedelta(microseconds=us)
    return PgTimestamp(us)


def _dt_micros(v: _dt.datetime) -> int:
    return (((v.toordinal() - _PG_EPOCH_ORD) * 86400 + v.hour * 3600 + v.minute * 60
             + v.second) * 1_000_000 + v.microsecond)


def _td_micros(td: _dt.timedelta) -> int:
    return (td.days * 86400 + td.seconds) * 1_000_000 + td.microseconds


def _encode_pgts(v: PgTimestamp, name: str) -> bytes:
    if INT64_MIN <= v.micros <= INT64_MAX:
        return _i8.pack(v.micros)
    raise EncodeError(EE_RANGE.format(value=v, name=name))


def encode_timestamp(v) -> bytes:
    if isinstance(v, _dt.datetime):
        if v.tzinfo is not None and v.utcoffset() is not None:
            raise EncodeError(EE_AWARE.format(what="datetime", name="timestamp"))
        return _i8.pack(_dt_micros(v))
    if isinstance(v, PgTimestamp):
        return _encode_pgts(v, "timestamp")
    raise _type_error("datetime", "timestamp", v)


def encode_timestamptz(v) -> bytes:
    if isinstance(v, _dt.datetime):
        off = v.utcoffset()
        if off is None:
            raise EncodeError(EE_NAIVE.format(what="datetime", name="timestamptz"))
        us = _dt_micros(v) - _td_micros(off)
        if INT64_MIN < us < INT64_MAX:
            return _i8.pack(us)
        raise EncodeError(EE_RANGE.format(value=v, name="timestamptz"))
    if isinstance(v, PgTimestamp):
        return _encode_pgts(v, "timestamptz")
    raise _type_error("datetime", "timestamptz", v)


def encode_timestamptz_naive_utc(v) -> bytes:
    """Like encode_timestamptz, but a naive datetime is taken as UTC (opt-in)."""
    if isinstance(v, _dt.datetime) and v.utcoffset() is None:
        return _i8.pack(_dt_micros(v))
    return encode_timestamptz(v)


def _time_of(us: int, tz=None) -> _dt.time:
    s, us = divmod(us, 1_000_000)
    return _dt.time(s // 3600, s // 60 % 60, s % 60, us, tz)


def decode_time(b: bytes):
    if len(b) != 8:
        raise ValueError(ER_SIZE.format(n=len(b), size=8))
    us = _i8.unpack(b)[0]
    if 0 <= us < _US_DAY:
        return _time_of(us)
    return PgTime(us)


_tz_cache: Dict[int, _dt.timezone] = {}


def decode_timetz(b: bytes):
    if len(b) != 12:
        raise ValueError(ER_SIZE.format(n=len(b), size=12))
    us, zone = _qi.unpack(b)
    # The wire zone is seconds *west* of Greenwich; Python's offsets are east.
    east = -zone
    if 0 <= us < _US_DAY and -86400 < east < 86400:
        tz = _tz_cache.get(east)
        if tz is None:
            tz = _tz_cache[east] = _dt.timezone(_dt.timedelta(seconds=east))
        return _time_of(us, tz)
    return PgTime(us, east)


def _time_micros(v: _dt.time) -> int:
    return ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond


def encode_time(v) -> bytes:
    if isinstance(v, _dt.time):
        if v.utcoffset() is not None:
            raise EncodeError(EE_AWARE.format(what="time", name="time"))
        return _i8.pack(_time_micros(v))
    if isinstance(v, PgTime):
        if v.offset is not None:
            raise EncodeError(EE_AWARE.format(what="time", name="time"))
        if INT64_MIN <= v.micros <= INT64_MAX:
            return _i8.pack(v.micros)
        raise EncodeError(EE_RANGE.format(value=v, name="time"))
    raise _type_error("time", "time", v)


def encode_timetz(v) -> bytes:
    if isinstance(v, _dt.time):
        off = v.utcoffset()
        if off is None:
            raise EncodeError(EE_NAIVE.format(what="time", name="timetz"))
        if off.microseconds:
            raise EncodeError(EE_NO_OFFSET.format(name="timetz"))
        return _qi.pack(_time_micros(v), -(off.days * 86400 + off.seconds))
    if isinstance(v, PgTime):
        if v.offset is None:
            raise EncodeError(EE_NAIVE.format(what="time", name="timetz"))
        try:
            return _qi.pack(v.micros, -v.offset)
        except struct.error:
            raise EncodeError(EE_RANGE.format(value=v, name="timetz")) from None
    raise _type_error("time", "timetz", v)


def decode_interval(b: bytes):
    if len(b) != 16:
        raise ValueError(ER_SIZE.format(n=len(b), size=16))
    us, days, months = _qii.unpack(b)
    if days == 0 and months == 0:
        return _timedelta(microseconds=us)
    return PgInterval(months, days, us)


def encode_interval(v) -> bytes:
    if isinstance(v, _dt.timedelta):
        # Microseconds only, so that it decodes back to the same timedelta.
        us = _td_micros(v)
        if INT64_MIN <= us <= INT64_MAX:
            return _qii.pack(us, 0, 0)
        raise EncodeError(EE_RANGE.format(value=v, name="interval"))
    if isinstance(v, PgInterval):
        try:
            return _qii.pack(v.micros, v.days, v.months)
        except struct.error:
            raise EncodeError(EE_RANGE.format(value=v, name="interval")) from None
    raise _type_error("timedelta", "interval", v)
