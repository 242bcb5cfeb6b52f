"""Safety of the Cython core ``dumpcodec._fastcopy`` on hostile input.

Every truncation, bit flip and huge length of sample streams, fed whole and in
pieces, must never crash the interpreter and must give exactly the pure-Python
twin's result: the same rows, or the same error class, message, offset, row and
column, raised by the same call.  Also: the Scanner releases the GIL, and the
Encoder stays usable after an error.
"""
import random
import struct
import sys
import threading
import time

import pytest

from codec_helpers import HEADER, SIG, TRAILER, tup
from dumpcodec.copy import pure
from dumpcodec.errors import CopyFormatError

fast = pytest.importorskip("dumpcodec._fastcopy",
                           reason="the Cython core is not built")

SAMPLES = {
    "small": HEADER + tup(b"\x00\x00\x00\x01", b"abc") + tup(None, b"")
    + tup(b"\x00\x00\x00\x03", None) + TRAILER,
    "extension": SIG + struct.pack(">I", 0xFFFF) + struct.pack(">i", 3) + b"xyz"
    + tup(b"q" * 9) + tup(None) + TRAILER,
    "oids": SIG + struct.pack(">I", 1 << 16) + b"\x00\x00\x00\x00"
    + b"\x00\x01\x00\x00\x00\x04\x00\x00\x30\x39\x00\x00\x00\x01z" * 2 + TRAILER,
    "zero columns": HEADER + tup() + tup() + TRAILER,
    # identical tuples: the C scanner's shape prediction path
    "repeated": HEADER + tup(b"abcd", b"xy", None) * 6 + TRAILER,
}


def outcome(mod, cls_name, data, pieces, **kw):
    """Run one consumer over pieces; return what it produced, error included.

    Rows are compared by repr (NaN is not equal to itself) and by type.
    """
    cls = getattr(mod, cls_name)
    obj = cls(**kw)
    got = []
    for i, p in enumerate(pieces):
        try:
            res = obj.feed(p)
            if isinstance(res, list):
                res = [(repr(r), [type(v) for v in r]) if isinstance(r, tuple) else r
                       for r in res]
            got.append(res)
        except CopyFormatError as e:
            return got, ("feed", i, str(e), e.offset, e.row, e.column)
    try:
        got.append(obj.close())
    except CopyFormatError as e:
        return got, ("close", str(e), e.offset, e.row, e.column)
    state = (obj.rows, obj.offset, obj.done, obj.flags, obj.tuple_end)
    return got, state


def compare(data, pieces, types=None):
    consumers = [("Decoder", {}), ("Scanner", {}), ("Chunker", {"chunk_size": 40})]
    if types is not None:
        consumers = [("Decoder", {"types": types, "names": [f"c{i}" for i in range(len(types))]})]
    for cls_name, kw in consumers:
        assert outcome(fast, cls_name, data, pieces, **kw) \
            == outcome(pure, cls_name, data, pieces, **kw), (cls_name, data, pieces)


def splits(data, rng):
    yield [data]
    yield [data[i:i + 1] for i in range(len(data))]
    for _ in range(3):
        cuts = sorted(rng.sample(range(len(data) + 1), min(3, len(data) + 1)))
        yield [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_truncation(name):
    data = SAMPLES[name]
    rng = random.Random(1)
    for cut in range(len(data) + 1):
        for pieces in splits(data[:cut], rng):
            compare(data[:cut], pieces)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_bit_flip(name):
    data = SAMPLES[name]
    rng = random.Random(2)
    for i in range(len(data)):
        for bit in range(8):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            bad = bytes(bad)
            compare(bad, [bad])
            cut = rng.randrange(len(bad) + 1)
            compare(bad, [bad[:cut], bad[cut:]])


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_huge_and_hostile_words_everywhere(name):
    data = SAMPLES[name]
    words = [b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00", b"\xff\xff\xff\xfe",
             b"\x40\x00\x00\x01", b"\x40\x00\x00\x00", b"\x00\x00\x10\x00", b"\xff\xff\xff\xff"]
    for i in range(len(data)):
        for w in words:
            bad = data[:i] + w + data[i + len(w):]
            compare(bad, [bad])
            compare(bad, [bad[:i + 2], bad[i + 2:]])
            compare(bad + b"\x00" * 16, [bad + b"\x00" * 16])


def test_random_garbage_and_appended_data():
    rng = random.Random(3)
    for _ in range(300):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        for data in (junk, HEADER + junk, SAMPLES["small"] + junk, HEADER + tup(b"a") + junk):
            compare(data, [data])
            if data:
                cut = rng.randrange(len(data))
                compare(data, [data[:cut], data[cut:]])


def test_scanner_releases_the_gil():
    # With a long switch interval the other thread can only run while the main
    # thread gives the GIL up by itself: during the scan, if it releases the GIL.
    body = tup(b"\x00" * 8, b"\x00" * 4) * 1_000_000
    data = HEADER + body + TRAILER
    ticks = []
    stop = threading.Event()
    started = threading.Event()

    def ticker():
        started.set()
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0)

    old = sys.getswitchinterval()
    sys.setswitchinterval(5.0)
    t = threading.Thread(target=ticker)
    t.start()
    started.wait()
    try:
        during = 0
        # the other thread needs the OS to schedule it within a few milliseconds
        # of C: on a busy machine that can take several attempts
        for _ in range(50):
            sc = fast.Scanner()
            before = len(ticks)
            sc.feed(data)
            during += len(ticks) - before
            sc.close()
            assert sc.rows == 1_000_000
            if during > 0:
                break
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old)
    assert during > 0


def test_encoder_usable_after_errors_raw():
    enc = fast.Encoder()
    good = enc.encode([(b"a", None)])
    with pytest.raises(TypeError):
        enc.encode([(b"a", None), (b"b", 3)])
    with pytest.raises(ValueError):
        enc.encode([(b"a",)])
    assert enc.encode([(b"a", None)]) == good
    assert enc.rows == 2


# A typed stream with every hot type of the C core (and a few delegated ones).
TYPED = ["int2", "int4", "int8", "oid", "float4", "float8", "bool", "text", "bytea",
         "date", "timestamp", "timestamptz", "numeric", "uuid", "jsonb", "int4[]",
         "text[]", "numeric[]", "interval"]


def typed_sample():
    import datetime as dt
    import decimal
    import uuid
    utc = dt.timezone.utc
    row = (-3, 2**31 - 1, -2**63, 7, 1.5, -0.0, True, "h\u00e9", b"\x00\x01",
           dt.date(1999, 12, 31), dt.datetime(2001, 2, 3, 4, 5, 6, 7),
           dt.datetime(1970, 1, 1, tzinfo=utc), decimal.Decimal("-12.340"),
           uuid.UUID(int=12345678901234567890), "{}", [1, None, 3], [["a"], ["b"]],
           [decimal.Decimal("0.01")], dt.timedelta(seconds=3))
    enc = pure.Encoder(TYPED)
    return enc.header() + enc.encode([row, (None,) * len(TYPED)]) + enc.trailer()


def test_typed_stream_values_and_errors_match_the_twin():
    data = typed_sample()
    assert outcome(fast, "Decoder", data, [data], types=TYPED)[1] == \
        outcome(pure, "Decoder", data, [data], types=TYPED)[1]
    compare(data, [data], TYPED)
    rng = random.Random(4)
    for i in range(len(data)):
        for bit in range(8):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            bad = bytes(bad)
            compare(bad, [bad], TYPED)
        cut = rng.randrange(len(data) + 1)
        compare(data, [data[:cut], data[cut:]], TYPED)
        compare(data[:i], [data[:i]], TYPED)
    for i in range(19, len(data) - 4):
        for w in (b"\x7f\xff\xff\xff", b"\x00\x00\x00\x00", b"\x00\x00\x00\x01",
                  b"\xff\xff\xff\xff", b"\x00\x00\x27\x10", b"\xd0\x00\x00\x00"):
            bad = data[:i] + w + data[i + 4:]
            compare(bad, [bad], TYPED)


def _custom_type(decode, encode):
    from dumpcodec import pgtypes
    return pgtypes.TypeInfo(987654, "custom", "base", pgtypes.CODEC_PY, decode, encode)


def test_reentrant_feed_and_encode_are_refused():
    # A type's Python function that calls back into the same decoder/encoder
    # must not corrupt the C buffers in use: the inner call is refused.
    holder = {}

    def decode(b):
        holder["dec"].feed(b"\x00")
        return b

    def encode(v):
        return holder["enc"].encode([(b"x",)])

    ti = _custom_type(decode, encode)
    dec = fast.Decoder([ti])
    holder["dec"] = dec
    with pytest.raises(RuntimeError, match="while it is running"):
        dec.feed(HEADER + tup(b"abc") + TRAILER)
    enc = fast.Encoder([ti])
    holder["enc"] = enc
    with pytest.raises(RuntimeError, match="while it is running"):
        enc.encode([(b"v",)])
    # and the encoder still works afterwards
    holder["enc"] = fast.Encoder(None)
    assert enc.encode([(b"v",)]) == tup(b"x" * 0 + holder["enc"].encode([(b"x",)]))


def test_encoder_usable_after_errors_typed():
    import datetime as dt
    import decimal
    types = ["int4", "timestamptz", "text", "numeric"]
    good = (1, dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc), "a", decimal.Decimal("1.5"))
    enc = fast.Encoder(types, names=["a", "b", "c", "d"])
    ref = pure.Encoder(types, names=["a", "b", "c", "d"])
    block = enc.encode([good])
    assert block == ref.encode([good])
    bad_rows = [
        (2 ** 40, good[1], "a", good[3]),                       # out of range for int4
        (1, dt.datetime(2020, 1, 1), "a", good[3]),             # naive into timestamptz
        (1, good[1], "a\x00b", good[3]),                        # NUL in text
        (1, good[1], "a", "1.5"),                               # wrong type for numeric
    ]
    for bad in bad_rows:
        for mod_enc in (enc, ref):
            with pytest.raises((TypeError, ValueError)) as ei:
                mod_enc.encode([good, bad, good])
            if mod_enc is enc:
                fast_err = (type(ei.value), str(ei.value), ei.value.row, ei.value.column)
            else:
                assert fast_err == (type(ei.value), str(ei.value), ei.value.row, ei.value.column)
        # nothing of the failed call is left behind, and the next call is clean
        assert enc.encode([good]) == block
        assert ref.encode([good]) == block
    assert enc.rows == ref.rows == 1 + len(bad_rows)


def test_big_tuple_fed_in_small_pieces():
    # Only the incomplete tuple is kept between pieces, and it grows by appending:
    # 30 000 small pieces of one 200 kB field must come out whole and in order.
    blob = bytes(range(256)) * 800
    data = HEADER + tup(b"\x00\x00\x00\x01", blob) + tup(None, b"x") + TRAILER
    for mod in (fast, pure):
        dec = mod.Decoder(["int4", "bytea"])
        rows = []
        for i in range(0, len(data), 7):
            rows += dec.feed(data[i:i + 7])
        dec.close()
        assert rows == [(1, blob), (None, b"x")]
        assert dec.offset == len(data)
    ch = fast.Chunker(1000)
    pieces = []
    for i in range(0, len(data), 7):
        pieces += ch.feed(data[i:i + 7])
    pieces += ch.close()
    assert [n for _, n in pieces] == [1, 1]
    assert pieces[0][0] == HEADER + tup(b"\x00\x00\x00\x01", blob) + TRAILER


def test_other_exception_from_a_type_function_stops_the_decoder():
    # Not a value error (those become CopyFormatError): it propagates, and the
    # half-consumed decoder refuses to go on instead of misreading later bytes.
    def decode(b):
        raise KeyError("boom")

    dec = fast.Decoder(["int4", _custom_type(decode, bytes)])
    data = HEADER + tup(b"\x00\x00\x00\x01", b"x") + TRAILER
    with pytest.raises(KeyError):
        dec.feed(data[:35])
    with pytest.raises(KeyError):
        dec.feed(data[35:])
