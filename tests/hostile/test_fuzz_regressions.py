"""Minimized reproducers of what the fuzzers found, one test per finding.

Each test names the harness check that caught it (see fuzz/README.md).  They run on
both codec implementations whatever ``DUMPCODEC_IMPL`` says, because most findings
were disagreements between them.
"""
import gzip
import io
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "fuzz"))

import fuzzlib  # noqa: E402

from codec_helpers import HEADER, TRAILER, tup  # noqa: E402
from dumpcodec.errors import CopyFormatError  # noqa: E402

IMPLS = fuzzlib.load_impls()


@pytest.fixture(params=sorted(IMPLS))
def mod(request):
    return IMPLS[request.param]


@pytest.mark.parametrize("typ, value", [
    ("int4", b"\x00\x00\x01"),                          # 3 bytes for an int4
    ("bit", b"\x00\x00\x00\x09\x80"),                  # 9 bits in 1 byte
    ("int4range", b"\x02\x00\x30\x00\x04"),            # bound length past the value
    ("text[]", b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x19"
               b"\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\xa2"),  # bad UTF-8
])
def test_value_error_is_sticky(mod, typ, value):
    # fuzz_decoder "error not sticky": after a value could not be decoded, the C core's
    # close() reported a truncation at the tuple start instead of the same error.
    stream = HEADER + tup(value) + TRAILER
    dec = mod.Decoder([typ])
    with pytest.raises(CopyFormatError) as first:
        dec.feed(stream)
        dec.close()
    assert first.value.column == 1 and first.value.row == 1
    assert first.value.offset == len(HEADER) + 2
    for again in (dec.close, lambda: dec.feed(b"")):
        with pytest.raises(CopyFormatError) as second:
            again()
        assert fuzzlib.error_key(second.value) == fuzzlib.error_key(first.value)


def test_empty_record_round_trips(mod):
    # fuzz_decoder round trip: ``row()`` decoded to PgRecord((), oids=()) which the
    # encoder refused ("record value needs field type OIDs").
    value = b"\x00\x00\x00\x00"                 # record with 0 fields, as the server sends
    stream = HEADER + tup(value) + TRAILER
    dec = mod.Decoder(["record"])
    rows = dec.feed(stream)
    dec.close()
    enc = mod.Encoder(["record"])
    assert enc.header() + enc.encode(rows) + enc.trailer() == stream


def test_split_inside_length_word_after_bad_value(mod):
    # The same value error whether the stream comes whole or a byte at a time.
    stream = HEADER + tup(b"\x00\x00\x01") + TRAILER
    keys = []
    for pieces in ([stream], [stream[i:i + 1] for i in range(len(stream))]):
        dec = mod.Decoder(["int4"])
        with pytest.raises(CopyFormatError) as exc:
            for p in pieces:
                dec.feed(p)
            dec.close()
        keys.append(fuzzlib.error_key(exc.value))
    assert keys[0] == keys[1]


def _narrow_archive(backend="tar"):
    from dumpcodec.archive import open_dump
    rows = [(i * 7, -i) for i in range(50)]
    enc = IMPLS["python"].Encoder(["int8", "int4"])
    stream = enc.header() + enc.encode(rows) + enc.trailer()
    buf = io.BytesIO()
    with open_dump(buf, "w", backend=backend, chunk_size=128) as w:
        with w.add_table("public.narrow", None, ["a", "b"], ["int8", "int4"]) as t:
            t.write(stream)
    return buf.getvalue(), rows


def test_archive_recompressed_as_one_gzip_stream_reads(tmp_path):
    # fuzz_archive "verify() ok but reading table fails": our tar archive, gzipped as
    # one stream (what `zcat a | gzip > b` or re-compressing with tar gives), verifies
    # clean, but reading one table used the manifest's per-member offsets into the
    # compressed file and failed with "corrupt compressed data".  docs/FORMAT.md
    # section 6: "a plain tar compressed afterwards ... is still readable in one pass,
    # only without random access".  Its manifest says it was written as a plain tar,
    # so no locator trailer is expected at the end of the gzip stream.
    from dumpcodec.archive import open_dump
    data, rows = _narrow_archive("tar")
    path = tmp_path / "recompressed.dump"
    path.write_bytes(gzip.compress(data))
    with open_dump(str(path)) as r:
        assert r.verify().ok
        assert list(r.read_rows("public.narrow")) == rows
