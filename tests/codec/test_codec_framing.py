"""COPY BINARY framing through ``dumpcodec.codec`` (runs for both implementations).

Raw mode (bytes per field), the push decoder fed at every split offset, the pull
form, the scanner, the chunker, the raw encoder and write_stream, and the exact error
message for each framing fault.
"""
import io
import struct

import pytest

from codec_helpers import HEADER, SIG, TRAILER, stream, tup
from dumpcodec import codec
from dumpcodec.errors import CopyFormatError, EncodeError


ROWS = [(b"\x00\x00\x00\x01", b"abc"), (None, b""), (b"\x00\x00\x00\x03", None)]
SMALL = stream(*(tup(*r) for r in ROWS))


def decode_all(data, pieces=None, **kw):
    dec = codec.Decoder(**kw)
    rows = []
    if pieces is None:
        rows += dec.feed(data)
    else:
        for p in pieces:
            rows += dec.feed(p)
    dec.close()
    return rows, dec


def error_of(fn):
    with pytest.raises(CopyFormatError) as ei:
        fn()
    return ei.value


def test_golden_small_stream_annotated():
    # header: signature, flags 0, extension length 0
    expected = (b"PGCOPY\n\xff\r\n\x00" b"\x00\x00\x00\x00" b"\x00\x00\x00\x00"
                # row 1: 2 fields; 4 bytes int; 3 bytes "abc"
                b"\x00\x02" b"\x00\x00\x00\x04\x00\x00\x00\x01" b"\x00\x00\x00\x03abc"
                # row 2: NULL, empty string
                b"\x00\x02" b"\xff\xff\xff\xff" b"\x00\x00\x00\x00"
                # row 3: 4 bytes, NULL
                b"\x00\x02" b"\x00\x00\x00\x04\x00\x00\x00\x03" b"\xff\xff\xff\xff"
                b"\xff\xff")
    assert SMALL == expected
    rows, dec = decode_all(SMALL)
    assert rows == ROWS
    assert all(type(r) is tuple for r in rows)
    assert dec.rows == 3 and dec.done and dec.offset == len(SMALL) and dec.flags == 0
    enc = codec.Encoder()
    assert enc.header() + enc.encode(ROWS) + enc.trailer() == expected


@pytest.mark.parametrize("cut", range(len(SMALL) + 1))
def test_every_split_offset(cut):
    rows, dec = decode_all(SMALL, [SMALL[:cut], SMALL[cut:]])
    assert rows == ROWS and dec.offset == len(SMALL)


def test_byte_at_a_time_and_three_pieces():
    rows, _ = decode_all(SMALL, [SMALL[i:i + 1] for i in range(len(SMALL))])
    assert rows == ROWS
    for a in range(0, len(SMALL), 3):
        for b in range(a, len(SMALL), 5):
            rows, _ = decode_all(SMALL, [SMALL[:a], SMALL[a:b], SMALL[b:]])
            assert rows == ROWS


def test_feed_accepts_bytearray_and_memoryview_and_returns_batches():
    dec = codec.Decoder()
    assert dec.feed(bytearray(SMALL[:36])) == [ROWS[0]]
    assert dec.feed(memoryview(SMALL)[36:]) == ROWS[1:]
    dec.close()


def test_header_extension_and_unknown_noncritical_flags_are_skipped():
    hdr = SIG + struct.pack(">I", 0x0000FFFF) + struct.pack(">i", 5) + b"12345"
    data = stream(tup(b"x"), header=hdr)
    rows, dec = decode_all(data)
    assert rows == [(b"x",)] and dec.flags == 0xFFFF
    sc = codec.Scanner()
    assert sc.feed(data) == 1
    sc.close()
    assert sc.header_size == 24 and sc.tuple_end == len(data) - 2


def test_oid_flag_reads_and_drops_the_oid_field():
    hdr = SIG + struct.pack(">I", 1 << 16) + b"\x00\x00\x00\x00"
    # field count 1 does not count the OID field that follows it
    t = b"\x00\x01" + b"\x00\x00\x00\x04" + b"\x00\x00\x30\x39" + b"\x00\x00\x00\x01z"
    data = hdr + t + t + TRAILER
    rows, dec = decode_all(data)
    assert rows == [(b"z",), (b"z",)]
    assert codec.scan(data) == (2, len(data))
    for cut in range(len(data) + 1):
        assert decode_all(data, [data[:cut], data[cut:]])[0] == rows


def test_zero_column_rows():
    data = stream(tup(), tup())
    assert decode_all(data)[0] == [(), ()]
    assert codec.scan(data) == (2, len(data))


def test_iter_rows_pull_form_small_reads():
    for rs in (1, 2, 7, 1 << 20):
        assert list(codec.iter_rows(io.BytesIO(SMALL), read_size=rs)) == ROWS


def test_iter_rows_truncated_raises_at_end():
    with pytest.raises(CopyFormatError, match="before the trailer"):
        list(codec.iter_rows(io.BytesIO(SMALL[:-2])))


def test_scanner_counts_and_boundaries():
    sc = codec.Scanner(ncols=2)
    assert sc.feed(SMALL[:36]) == 1
    assert sc.tuple_end == 19 + 2 + 8 + 7
    assert sc.feed(SMALL[36:]) == 2
    sc.close()
    assert sc.rows == 3 and sc.done and sc.header_size == 19
    assert sc.tuple_end == len(SMALL) - 2
    assert codec.scan(SMALL) == (3, len(SMALL))


def test_scanner_field_count_mismatch():
    e = error_of(lambda: codec.Scanner(ncols=3).feed(SMALL))
    assert str(e) == "row 1 at byte 19: 2 fields, expected 3"
    assert (e.offset, e.row, e.column) == (19, 1, None)


@pytest.mark.parametrize("chunk_size", [21, 40, 45, 60, 100, 1000])
def test_chunker_pieces_are_complete_bounded_streams(chunk_size):
    big = stream(*(tup(struct.pack(">i", i), b"x" * (i % 13)) for i in range(50)))
    for split in (1, 7, len(big)):
        ch = codec.Chunker(chunk_size)
        pieces = []
        for i in range(0, len(big), split):
            pieces += ch.feed(big[i:i + split])
        pieces += ch.close()
        rows = []
        for data, n in pieces:
            assert codec.scan(data) == (n, len(data))
            got = decode_all(data)[0]
            assert len(got) == n >= 1
            if n > 1:
                assert len(data) <= chunk_size
            rows += got
        assert rows == decode_all(big)[0]


def test_chunker_empty_stream_gives_one_empty_piece():
    ch = codec.Chunker(1000)
    pieces = ch.feed(HEADER + TRAILER) + ch.close()
    assert pieces == [(HEADER + TRAILER, 0)]


def test_chunker_keeps_original_header():
    hdr = SIG + struct.pack(">I", 1 << 16) + b"\x00\x00\x00\x02ab"
    t = b"\x00\x01" + b"\x00\x00\x00\x04" + b"\x00\x00\x30\x39" + b"\x00\x00\x00\x01z"
    data = hdr + t * 3 + TRAILER
    ch = codec.Chunker(len(hdr) + len(t) + 2)
    pieces = ch.feed(data) + ch.close()
    assert pieces == [(hdr + t + TRAILER, 1)] * 3


def test_chunker_truncated_raises_at_close():
    ch = codec.Chunker(1000)
    ch.feed(SMALL[:-1])
    with pytest.raises(CopyFormatError, match="inside the field count"):
        ch.close()


def test_raw_encoder_and_write_stream():
    enc = codec.Encoder()
    assert enc.encode([]) == b""
    block = enc.encode(ROWS[:1]) + enc.encode(ROWS[1:])
    assert enc.header() + block + enc.trailer() == SMALL
    out = io.BytesIO()
    assert codec.write_stream(out, ROWS, None) == len(SMALL)
    assert out.getvalue() == SMALL
    out = io.BytesIO()
    rows = [(struct.pack(">i", i), b"y" * (i % 5)) for i in range(3000)]
    n = codec.write_stream(out, iter(rows), None, block_size=1000)
    assert n == len(out.getvalue())
    assert decode_all(out.getvalue())[0] == rows


def test_raw_encoder_errors_name_row_and_field_and_leave_encoder_usable():
    enc = codec.Encoder(names=["a", "b"])
    with pytest.raises(TypeError) as ei:
        enc.encode([(b"1", b"2"), (b"1", 5)])
    assert str(ei.value) == 'field 2 ("b") of row 2: expected bytes or None, not int'
    assert (ei.value.row, ei.value.column) == (2, 2)
    with pytest.raises(EncodeError) as ei:
        enc.encode([(b"1",)])
    assert str(ei.value) == "row 1: 1 values, expected 2"
    # nothing of the failed calls was counted or emitted
    assert enc.encode([(b"1", None)]) == tup(b"1", None)
    assert enc.rows == 1
    with pytest.raises(EncodeError, match="row 2: 3 values, expected 2"):
        enc.encode([(b"1", b"2", b"3")])
    with pytest.raises(TypeError, match="row 2: a row must be a sequence, not int"):
        enc.encode([5])


# ---------------------------------------------------------------------------
# Framing faults: exact class, message and attributes.
# ---------------------------------------------------------------------------

BAD = [
    ("bad signature", b"PGCOPX\n\xff\r\n\x00" + HEADER[11:] + TRAILER,
     "header at byte 0: not a COPY BINARY stream (bad signature)", (0, None, None)),
    ("text copy", b"1\tabc\n", "header at byte 0: not a COPY BINARY stream (bad signature)",
     (0, None, None)),
    ("critical flag", SIG + b"\x00\x02\x00\x00" + b"\x00\x00\x00\x00" + TRAILER,
     "header at byte 11: unknown critical flags 0x00020000", (11, None, None)),
    ("all critical flags", SIG + b"\xff\xff\x00\x00" + b"\x00\x00\x00\x00" + TRAILER,
     "header at byte 11: unknown critical flags 0xfffe0000", (11, None, None)),
    ("negative extension", SIG + b"\x00\x00\x00\x00" + b"\xff\xff\xff\xfe" + TRAILER,
     "header at byte 15: invalid header extension length -2", (15, None, None)),
    ("huge extension", SIG + b"\x00\x00\x00\x00" + b"\x7f\xff\xff\xff" + TRAILER,
     "header at byte 15: header extension length 2147483647 exceeds the 1 GiB limit",
     (15, None, None)),
    ("negative length", HEADER + b"\x00\x01\xff\xff\xff\xfe" + TRAILER,
     "field 1 of row 1 at byte 21: invalid length -2", (21, 1, 1)),
    ("huge length", HEADER + tup(b"a") + b"\x00\x01\x7f\xff\xfd\x78" + b"x" * 10,
     "field 1 of row 2 at byte 28: length 2147483000 exceeds the 1 GiB limit", (28, 2, 1)),
    ("just over the limit", HEADER + b"\x00\x01" + struct.pack(">i", (1 << 30) + 1),
     "field 1 of row 1 at byte 21: length 1073741825 exceeds the 1 GiB limit", (21, 1, 1)),
    ("wrong field count", HEADER + tup(b"a") + tup(b"a", b"b") + TRAILER,
     "row 2 at byte 26: 2 fields, expected 1", (26, 2, None)),
    ("negative field count", HEADER + tup(b"a") + b"\xff\xfe" + TRAILER,
     "row 2 at byte 26: invalid field count -2", (26, 2, None)),
    ("data after trailer", HEADER + tup(b"a") + TRAILER + b"\x00",
     "byte 28: data after the trailer", (28, None, None)),
    ("second stream after trailer", HEADER + TRAILER + HEADER + TRAILER,
     "byte 21: data after the trailer", (21, None, None)),
    ("truncated before trailer", HEADER + tup(b"a"),
     "row 2 at byte 26: stream ends at byte 26 before the trailer", (26, 2, None)),
    ("truncated in count", HEADER + tup(b"a") + b"\xff",
     "row 2 at byte 26: stream ends at byte 27 inside the field count", (26, 2, None)),
    ("truncated in length word", HEADER + b"\x00\x02\x00\x00\x00\x01a\x00\x00",
     "field 2 of row 1 at byte 26: stream ends at byte 28 inside the field", (26, 1, 2)),
    ("truncated in value", HEADER + b"\x00\x02\x00\x00\x00\x01a\x00\x00\x00\x05ab",
     "field 2 of row 1 at byte 26: stream ends at byte 32 inside the field", (26, 1, 2)),
    ("truncated header", SIG[:5],
     "header at byte 0: stream ends at byte 5 inside the header", (0, None, None)),
    ("empty", b"", "header at byte 0: stream ends at byte 0 inside the header",
     (0, None, None)),
    ("truncated extension", SIG + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x09abc",
     "header at byte 0: stream ends at byte 22 inside the header", (0, None, None)),
    ("oid length", SIG + b"\x00\x01\x00\x00" + b"\x00\x00\x00\x00" + b"\x00\x01"
     + b"\xff\xff\xff\xff" + b"\x00\x00\x00\x01z" + TRAILER,
     "OID field of row 1 at byte 21: invalid OID length -1", (21, 1, 0)),
    ("truncated oid", SIG + b"\x00\x01\x00\x00" + b"\x00\x00\x00\x00" + b"\x00\x01"
     + b"\x00\x00\x00\x04\x00",
     "OID field of row 1 at byte 21: stream ends at byte 26 inside the field", (21, 1, 0)),
]


@pytest.mark.parametrize("data,message,attrs", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_framing(data, message, attrs):
    # Same message whole, byte by byte, and through every consumer.
    for pieces in ([data], [data[i:i + 1] for i in range(len(data))]):
        e = error_of(lambda: decode_all(data, pieces))
        assert str(e) == message
        assert (e.offset, e.row, e.column) == attrs
        assert isinstance(e, ValueError)

        def scan_pieces():
            sc = codec.Scanner()
            for p in pieces:
                sc.feed(p)
            sc.close()
        assert str(error_of(scan_pieces)) == message

        def chunk_pieces():
            ch = codec.Chunker(64)
            for p in pieces:
                ch.feed(p)
            ch.close()
        assert str(error_of(chunk_pieces)) == message
    assert str(error_of(lambda: codec.scan(data))) == message
    assert str(error_of(lambda: list(codec.iter_rows(io.BytesIO(data), read_size=3)))) \
        == message


def test_column_names_in_messages():
    data = HEADER + b"\x00\x02\x00\x00\x00\x01a\xff\xff\xff\x00" + TRAILER
    e = error_of(lambda: decode_all(data, names=["id", "created"], raw=True,
                                    types=["int4", "int4"]))
    assert str(e) == 'field 2 ("created") of row 1 at byte 26: invalid length -256'


def test_error_is_sticky():
    dec = codec.Decoder()
    with pytest.raises(CopyFormatError) as first:
        dec.feed(HEADER + b"\xff\xf0")
    with pytest.raises(CopyFormatError) as again:
        dec.feed(TRAILER)
    assert str(again.value) == str(first.value)
    with pytest.raises(CopyFormatError):
        dec.close()


def test_truncated_at_every_offset_gives_a_truncation_error():
    for cut in range(len(SMALL) - 1):
        dec = codec.Decoder()
        dec.feed(SMALL[:cut])
        e = error_of(dec.close)
        assert f"stream ends at byte {cut} " in str(e)
        assert e.offset is not None and e.offset <= cut


def test_huge_length_is_refused_before_waiting_for_data():
    # The 1 GiB check happens on the length word alone: no data needs to follow.
    dec = codec.Decoder()
    with pytest.raises(CopyFormatError, match="exceeds the 1 GiB limit"):
        dec.feed(HEADER + b"\x00\x01\x7f\xff\xff\xff")
    # exactly the limit is allowed (and waits for the data)
    dec = codec.Decoder()
    assert dec.feed(HEADER + b"\x00\x01" + struct.pack(">i", 1 << 30)) == []


def test_constants():
    assert codec.MAX_FIELD_SIZE == 1 << 30
    assert codec.DEFAULT_CHUNK_SIZE >= 1 << 20
    assert codec.DEFAULT_READ_SIZE > 0 and codec.DEFAULT_BLOCK_SIZE > 0
