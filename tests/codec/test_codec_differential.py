"""Differential tests: the Cython core against the pure-Python twin, directly.

Same input, same result: equal rows (exactly: ``same``), equal bytes from the
encoders, equal error class and message (and offset/row/column) on malformed and
mutated streams, equal scanner counts and chunker pieces.  Runs whatever
DUMPCODEC_IMPL says, since it imports both modules itself.
"""
import io
import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

import codec_strategies as cs
from codec_helpers import same
from dumpcodec.copy import pure as py

try:
    from dumpcodec import _fastcopy as c
except ImportError as exc:  # pragma: no cover - CI builds it (see .ci/run)
    if os.environ.get("DUMPCODEC_IMPL") == "c":
        raise
    pytest.skip(f"the Cython core dumpcodec._fastcopy is not built ({exc})",
                allow_module_level=True)
# Both define every name of the written API (tests/codec/test_codec_api.py): nothing here
# is skipped for a name one side lacks.


def run_decoder(mod, types, pieces, raw=False, names=None):
    dec = mod.Decoder(types, raw=raw, names=names)
    rows = []
    try:
        for p in pieces:
            rows += dec.feed(p)
        dec.close()
    except Exception as exc:  # compare the class, message and attributes
        return ("error", type(exc), str(exc), getattr(exc, "offset", None),
                getattr(exc, "row", None), getattr(exc, "column", None), len(rows))
    return ("ok", rows, dec.rows, dec.offset, dec.done, dec.flags)


def run_encoder(mod, types, rows, names=None):
    enc = mod.Encoder(types, names=names)
    try:
        return ("ok", enc.header() + enc.encode(rows) + enc.trailer(), enc.rows)
    except Exception as exc:
        return ("error", type(exc), str(exc), getattr(exc, "row", None),
                getattr(exc, "column", None))


def run_scanner(mod, ncols, pieces):
    sc = mod.Scanner(ncols)
    counts = []
    try:
        for p in pieces:
            counts.append(sc.feed(p))
        sc.close()
    except Exception as exc:
        return ("error", type(exc), str(exc), exc.offset, exc.row, exc.column)
    return ("ok", counts, sc.rows, sc.offset, sc.tuple_end, sc.header_size, sc.flags)


def run_chunker(mod, size, pieces):
    ch = mod.Chunker(size)
    out = []
    try:
        for p in pieces:
            out += ch.feed(p)
        out += ch.close()
    except Exception as exc:
        return ("error", type(exc), str(exc), exc.offset, exc.row, exc.column)
    return ("ok", out)


def assert_same_outcome(a, b):
    assert a[0] == b[0], (a, b)
    if a[0] == "ok":
        assert same(list(a[1:]), list(b[1:])), (a, b)
    else:
        assert a == b


def _mutate(data, ops):
    data = bytearray(data)
    for kind, pos, val in ops:
        if not data:
            break
        p = pos % len(data)
        if kind == "set":
            data[p] = val
        elif kind == "insert":
            data[p:p] = bytes([val])
        elif kind == "delete":
            del data[p]
        else:
            data[p:p + 4] = struct.pack(">I", (0x7FFFFFFF, 0xFFFFFFFE, 0x40000001,
                                               0x80000000, val)[val % 5])
    return bytes(data)


OPS = st.lists(st.tuples(st.sampled_from(["set", "insert", "delete", "word"]),
                         st.integers(0, 10 ** 6), st.integers(0, 255)), max_size=3)


@given(cs.typed_rows(), OPS, st.data())
def test_decoders_agree(typed, ops, data):
    types, rows = typed
    enc = py.Encoder(types)
    stream = _mutate(enc.header() + enc.encode(rows) + enc.trailer(), ops)
    pieces = cs.split(stream, data.draw(cs.cuts(len(stream))))
    names = [f"c{i}" for i in range(len(types))]
    assert_same_outcome(run_decoder(py, types, pieces, names=names),
                        run_decoder(c, types, pieces, names=names))
    assert_same_outcome(run_decoder(py, types, pieces, raw=True),
                        run_decoder(c, types, pieces, raw=True))
    assert_same_outcome(run_decoder(py, None, pieces), run_decoder(c, None, pieces))
    assert_same_outcome(run_scanner(py, len(types), pieces),
                        run_scanner(c, len(types), pieces))
    size = data.draw(st.integers(21, 300))
    assert_same_outcome(run_chunker(py, size, pieces), run_chunker(c, size, pieces))


@given(cs.typed_rows())
def test_encoders_agree(typed):
    types, rows = typed
    a = run_encoder(py, types, rows)
    b = run_encoder(c, types, rows)
    assert a == b
    assert a[0] == "ok"


BAD_VALUES = st.one_of(st.none(), st.integers(-2 ** 70, 2 ** 70), st.floats(), st.text(max_size=3),
                       st.binary(max_size=3), st.booleans(), st.lists(st.integers(), max_size=2),
                       st.just("a\x00b"), st.decimals(allow_nan=True))


@given(st.lists(st.sampled_from(cs.ALL_TYPES), min_size=1, max_size=4), st.data())
def test_encoder_errors_agree(types, data):
    rows = data.draw(st.lists(st.tuples(*[st.one_of(cs.ALL[t], BAD_VALUES) for t in types]),
                              max_size=3))
    names = [f"n{i}" for i in range(len(types))]
    assert run_encoder(py, types, rows, names) == run_encoder(c, types, rows, names)


@given(st.binary(max_size=64), st.sampled_from([None, ["int4"], ["text", "int8"]]))
def test_random_bytes_agree(tail, types):
    for data in (tail, py.HEADER + tail, py.HEADER + tail + b"\xff\xff"):
        assert_same_outcome(run_decoder(py, types, [data]), run_decoder(c, types, [data]))
        assert_same_outcome(run_scanner(py, None, [data]), run_scanner(c, None, [data]))


@given(cs.typed_rows(max_rows=10), st.integers(1, 50))
def test_pull_and_write_agree(typed, read_size):
    types, rows = typed
    out_py, out_c = io.BytesIO(), io.BytesIO()
    assert py.write_stream(out_py, rows, types, block_size=64) == \
        c.write_stream(out_c, rows, types, block_size=64)
    assert out_py.getvalue() == out_c.getvalue()
    a = list(py.iter_rows(io.BytesIO(out_py.getvalue()), types, read_size=read_size))
    b = list(c.iter_rows(io.BytesIO(out_py.getvalue()), types, read_size=read_size))
    assert same(a, b)
    assert py.scan(out_py.getvalue()) == c.scan(out_py.getvalue())


def test_constants_agree():
    for name in ("DEFAULT_CHUNK_SIZE", "DEFAULT_READ_SIZE", "DEFAULT_BLOCK_SIZE",
                 "MAX_FIELD_SIZE"):
        assert getattr(py, name) == getattr(c, name), name
