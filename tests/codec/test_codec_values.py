"""The stand-in value objects: equality, hashing, pickling, text forms."""
import copy
import datetime as dt
import pickle

import pytest

from dumpcodec.values import (PgArray, PgDate, PgInterval, PgMultirange, PgRange,
                              PgRecord, PgTime, PgTimestamp)

SAMPLES = [PgDate(-1), PgDate.INFINITY, PgTimestamp(-10 ** 17), PgTimestamp.NEG_INFINITY,
           PgTime(86400000000), PgTime(86400000000, 3600), PgInterval(1, 2, 3),
           PgInterval.INFINITY, PgRange(1, 2), PgRange.EMPTY, PgRange(None, dt.date(2000, 1, 1)),
           PgMultirange([PgRange(1, 2)]), PgArray([[1, None]], (0, 3)),
           PgArray([1], (), hasnull=True), PgRecord((1, "a"), (23, 25))]


@pytest.mark.parametrize("value", SAMPLES, ids=repr)
def test_pickle_copy_hash_eq(value):
    for other in (pickle.loads(pickle.dumps(value)), copy.deepcopy(value)):
        assert other == value and hash(other) == hash(value)
        assert type(other) is type(value)
    assert {value: 1}[value] == 1
    assert repr(value)


def test_inequalities():
    assert PgDate(1) != PgDate(2) and PgDate(1) != dt.date(2000, 1, 2)
    assert PgArray([1], (0,)) != PgArray([1], (1,)) != [1]
    assert PgArray([1]) != PgArray([1], hasnull=True)
    assert PgRecord((1,), (23,)) != PgRecord((1,), (20,))
    assert PgRecord((1,), (23,)) == (1,)   # a plain tuple compares by value only
    assert PgInterval(0, 1, 0) != dt.timedelta(days=1)
    assert PgTime(5) != PgTime(5, 0)


def test_text_forms():
    assert PgDate(-730120).isoformat() == "0001-12-31 BC"
    assert PgDate(-730121).ymd() == (0, 12, 30)
    assert PgDate(2921940).isoformat() == "10000-01-01"
    assert PgDate.NEG_INFINITY.isoformat() == "-infinity"
    assert PgTimestamp(-63082281600000001).isoformat() == "0001-12-31 23:59:59.999999 BC"
    assert PgTimestamp(252455616000000000).isoformat() == "10000-01-01 00:00:00"
    assert str(PgRange(1, 5, True, True)) == "[1,5]" and str(PgRange(None, None)) == "(,)"
    with pytest.raises(ValueError):
        PgDate.INFINITY.ymd()


def test_range_normalization_and_record_shape():
    assert PgRange(None, 3, True, True) == PgRange(None, 3, False, True)
    assert PgRange(1, 2, empty=True) == PgRange.EMPTY
    assert PgRange.EMPTY.lower is None and not PgRange.EMPTY.lower_inc
    with pytest.raises(ValueError):
        PgRecord((1, 2), (23,))
    assert PgInterval.INFINITY.is_infinite and not PgInterval(1, 0, 0).is_infinite
    assert PgDate.INFINITY.is_infinite and PgTimestamp.INFINITY.is_infinite
