"""Malformed streams: truncation at every offset, bit flips, mutations, hostile sizes.

Whatever the input, decoding either succeeds or raises CopyFormatError (never
another exception, never a hang or a huge allocation), and the message depends only
on the bytes, not on how they were split.  Exact messages for the classic faults are
in test_codec_framing.py and test_codec_types.py; here the point is coverage.
"""
import datetime as dt
import struct
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import codec_strategies as cs
from codec_helpers import HEADER, TRAILER, encoded_stream, h
from dumpcodec import codec
from dumpcodec.errors import CopyFormatError
from dumpcodec.values import PgRange

TYPES = ["int4", "text", "numeric", "int4[]", "timestamptz", "int4range", "bool", "uuid"]
ROWS = [
    (1, "ab", Decimal("1.10"), [1, None, 3], dt.datetime(2001, 2, 3, tzinfo=dt.timezone.utc),
     PgRange(1, 9), True, None),
    (None, None, Decimal("-0.5"), [], None, PgRange.EMPTY, False, None),
]


STREAM = encoded_stream(ROWS, TYPES)


def outcome(data, pieces=None, types=TYPES, raw=False):
    """('ok', rows) or ('error', message, offset, row, column); any other exception
    propagates and fails the test."""
    dec = codec.Decoder(types, raw=raw)
    rows = []
    try:
        for p in (pieces if pieces is not None else [data]):
            rows += dec.feed(p)
        dec.close()
    except CopyFormatError as exc:
        return ("error", str(exc), exc.offset, exc.row, exc.column)
    return ("ok", len(rows))


def scan_outcome(data, ncols=len(TYPES)):
    sc = codec.Scanner(ncols)
    try:
        sc.feed(data)
        sc.close()
        return ("ok", sc.rows)
    except CopyFormatError as exc:
        return ("error", str(exc), exc.offset, exc.row, exc.column)


def test_truncated_at_every_offset():
    for cut in range(len(STREAM)):
        res = outcome(STREAM[:cut])
        assert res[0] == "error", cut
        assert f"stream ends at byte {cut} " in res[1]
        assert res[2] <= cut
        assert scan_outcome(STREAM[:cut]) == outcome(STREAM[:cut], raw=True)


@pytest.mark.parametrize("mask", [0x01, 0x10, 0x80, 0xFF])
def test_bit_flips_at_every_offset(mask):
    for i in range(len(STREAM)):
        data = bytearray(STREAM)
        data[i] ^= mask
        data = bytes(data)
        whole = outcome(data)
        assert outcome(data, [data[:i], data[i:i + 1], data[i + 1:]]) == whole
        assert outcome(data, [data[k:k + 7] for k in range(0, len(data), 7)]) == whole
        raw = outcome(data, raw=True)
        assert scan_outcome(data) == raw
        if raw[0] == "ok":
            assert whole[0] == "ok" or " value: " in whole[1]  # only a value error left
        else:
            # within a tuple, framing errors win over value errors
            assert whole == raw or (" value: " in whole[1]
                                    and (raw[3] is None or whole[3] < raw[3]))


def _mutate(data, ops):
    data = bytearray(data)
    for kind, pos, val in ops:
        if not data:
            break
        pos %= len(data) + (1 if kind == "insert" else 0)
        if kind == "set":
            data[pos % len(data)] = val
        elif kind == "insert":
            data[pos:pos] = bytes([val])
        elif kind == "delete":
            del data[pos % len(data)]
        elif kind == "word":
            p = pos % len(data)
            data[p:p + 4] = struct.pack(">I", [0x7FFFFFFF, 0xFFFFFFFE, 0x40000001, 0x80000000,
                                              val][val % 5])
    return bytes(data)


OPS = st.lists(st.tuples(st.sampled_from(["set", "insert", "delete", "word"]),
                         st.integers(0, 10 ** 6), st.integers(0, 255)), min_size=1, max_size=4)


@given(cs.typed_rows(max_rows=4), OPS, st.data())
def test_mutated_streams_fail_cleanly_and_deterministically(typed, ops, data):
    types, rows = typed
    enc = codec.Encoder(types)
    stream = _mutate(enc.header() + enc.encode(rows) + enc.trailer(), ops)
    whole = outcome(stream, types=types)
    pieces = cs.split(stream, data.draw(cs.cuts(len(stream))))
    assert outcome(stream, pieces, types=types) == whole
    raw = outcome(stream, pieces, types=types, raw=True)
    assert scan_outcome(stream, len(types)) == raw
    if raw[0] == "ok":
        assert whole[0] == "ok" or " value: " in whole[1]
    else:
        assert whole == raw or (" value: " in whole[1] and (raw[3] is None or whole[3] < raw[3]))


HOSTILE = [
    # (what, stream) -- each must fail fast with CopyFormatError
    ("field length 2 GiB - 1", HEADER + h("0001 7fffffff")),
    ("array claims 2^31 elements",
     HEADER + h("0001 00000024 00000001 00000000 00000017 7fffffff 00000001") + b"\0" * 16
     + TRAILER),
    ("array 6 dims of 2^31-1",
     HEADER + h("0001 0000003c 00000006 00000000 00000017") + h("7fffffff 00000001") * 6
     + TRAILER),
    ("multirange claims 2^31-1 ranges", HEADER + h("0001 00000008 7fffffff 00000000") + TRAILER),
    ("record claims 2^31-1 fields", HEADER + h("0001 00000008 7fffffff 00000000") + TRAILER),
    ("numeric claims 65535 digits", HEADER + h("0001 00000008 ffff 0000 0000 0000") + TRAILER),
    ("element length 2^31-1",
     HEADER + h("0001 00000018 00000001 00000000 00000017 00000001 00000001 7fffffff")
     + TRAILER),
    ("text field count 32767", HEADER + h("7fff 00000000")),
]


@pytest.mark.parametrize("spec", ["int4[]", "int4multirange", "record", "numeric"])
@pytest.mark.parametrize("what,data", HOSTILE, ids=[x[0] for x in HOSTILE])
def test_hostile_sizes(what, data, spec):
    res = outcome(data, types=[spec])
    assert res[0] == "error"
    assert res[1].startswith(("field 1 of row 1 at byte 21: ", "row 1 at byte 19: "))
