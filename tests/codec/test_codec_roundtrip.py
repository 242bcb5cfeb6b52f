"""Hypothesis round trips, codec to codec, through ``dumpcodec.codec``.

Random column types and values: ``decode(encode(rows)) == rows`` exactly, and
``encode(decode(b)) == b``; the decoder fed the same stream split at random points
(and the pull form with random read sizes) gives the same rows; the scanner and the
chunker agree with the decoder.
"""
import io

from hypothesis import given
from hypothesis import strategies as st

import codec_strategies as cs
from codec_helpers import encoded_stream, same
from dumpcodec import codec


def decode_pieces(types, pieces, raw=False):
    dec = codec.Decoder(types, raw=raw)
    out = []
    for p in pieces:
        out += dec.feed(p)
    dec.close()
    return out


@given(cs.typed_rows(), st.data())
def test_rows_round_trip_split_anywhere(typed, data):
    types, rows = typed
    stream = encoded_stream(rows, types)
    offsets = data.draw(cs.cuts(len(stream)))
    back = decode_pieces(types, cs.split(stream, offsets))
    assert same(back, rows)
    assert encoded_stream(back, types) == stream
    # raw passthrough keeps the bytes too
    raw = decode_pieces(types, cs.split(stream, offsets), raw=True)
    enc = codec.Encoder(None)
    assert enc.header() + enc.encode(raw) + enc.trailer() == stream


@given(cs.typed_rows(max_rows=20), st.integers(1, 64))
def test_pull_form_and_scanner(typed, read_size):
    types, rows = typed
    stream = encoded_stream(rows, types)
    assert same(list(codec.iter_rows(io.BytesIO(stream), types, read_size=read_size)), rows)
    assert codec.scan(stream) == (len(rows), len(stream))
    sc = codec.Scanner(len(types))
    total = 0
    for i in range(0, len(stream), read_size):
        total += sc.feed(stream[i:i + read_size])
    sc.close()
    assert total == sc.rows == len(rows) and sc.tuple_end == len(stream) - 2


@given(cs.typed_rows(max_rows=20), st.integers(21, 400), st.integers(1, 97))
def test_chunker_pieces_decode_to_the_same_rows(typed, chunk_size, piece):
    types, rows = typed
    stream = encoded_stream(rows, types)
    ch = codec.Chunker(chunk_size)
    chunks = []
    for i in range(0, len(stream), piece):
        chunks += ch.feed(stream[i:i + piece])
    chunks += ch.close()
    back = []
    for data, n in chunks:
        got = decode_pieces(types, [data])
        assert len(got) == n
        assert n <= 1 or len(data) <= chunk_size
        back += got
    assert same(back, rows)
    assert len(chunks) >= 1


@given(cs.typed_rows(max_rows=30), st.integers(1, 4096))
def test_write_stream_equals_encoder(typed, block_size):
    types, rows = typed
    out = io.BytesIO()
    n = codec.write_stream(out, iter(rows), types, block_size=block_size)
    assert out.getvalue() == encoded_stream(rows, types) and n == len(out.getvalue())


def test_every_split_of_a_typed_stream():
    types = ["int4", "text", "numeric", "int4[]", "timestamptz", "int4range"]
    import datetime as dt
    from decimal import Decimal
    from dumpcodec.values import PgRange
    rows = [(1, "a", Decimal("1.10"), [1, None], dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc),
             PgRange(1, 3)), (None,) * 6, (-5, "", Decimal("NaN"), [], None, PgRange.EMPTY)]
    stream = encoded_stream(rows, types)
    for a in range(len(stream) + 1):
        assert same(decode_pieces(types, [stream[:a], stream[a:]]), rows)
