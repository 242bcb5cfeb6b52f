"""The writer's shortcuts for many small tables write the same bytes as the plain
way: JSON members (spliced pieces against json.dumps), the manifest built a table at
a time, tar headers from a template."""
from __future__ import annotations

import io
import json
import random
import tarfile

import pytest

from archive_helpers import NonSeekable
from dumpcodec.archive import manifest as mf
from dumpcodec.archive import open_dump
from dumpcodec.archive._tar import _tarfile_header, member_header
from dumpcodec.copy import HEADER, TRAILER
from dumpcodec.errors import ArchiveError


def _reference(doc) -> bytes:
    return (json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                       allow_nan=False) + "\n").encode("utf-8")


def _value(rnd: random.Random, depth: int = 0):
    r = rnd.random()
    if depth > 4 or r < 0.4:
        return rnd.choice([None, True, False, 0, -7, 2 ** 70, 1.5, -0.0, 1e300, 3.25,
                           "", "a\"b\\c\n\u00e9\u2028\x00", "[]{},: x"])
    if r < 0.7:
        return {rnd.choice(["a", "b", "é", "", "z\n", '"']) + str(rnd.randint(0, 3)):
                _value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}
    seq = [_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return seq if r < 0.85 else tuple(seq)


def test_dump_json_is_json_dumps():
    rnd = random.Random(19)
    for _ in range(3000):
        doc = {"x": _value(rnd)}
        assert mf.dump_json(doc) == _reference(doc)
        # spliced pieces: at any depth, the same text
        assert mf.dump_json({"x": [mf.encode_value(doc["x"])]}) == \
            _reference({"x": [doc["x"]]})
        assert mf.dump_json({"x": {"a": 1, "s": mf.encode_value(doc["x"]), "z": [2]},
                             "y": (mf.encode_value(doc["x"]),)}) == \
            _reference({"x": {"a": 1, "s": doc["x"], "z": [2]}, "y": [doc["x"]]})
    # what the fast path leaves to the json module: its text or its error
    assert mf.dump_json({"b": {1: 2}, "a": mf.encode_value([1])}) == \
        _reference({"b": {1: 2}, "a": [1]})
    for bad, err in (({"a": float("nan")}, ValueError), ({"a": object()}, TypeError)):
        with pytest.raises(err):
            mf.dump_json(bad)
    loop: dict = {}
    loop["x"] = loop
    with pytest.raises(ValueError):
        mf.dump_json(loop)


def test_spliced_values_with_markers_or_the_walk():
    """A document whose own values are spliced is encoded in one call with a marker
    for each; where a marker's text shows up elsewhere (a key, a value, a spliced
    text) the walk gives the text instead: json.dumps's text either way."""
    rnd = random.Random(23)
    marker = mf._MARKER % 0
    other = mf._MARKER % 1
    for _ in range(2000):
        a, b = _value(rnd), _value(rnd)
        doc = {"d": mf.encode_value(a), "k": _value(rnd), "z": mf.encode_value(b)}
        plain = {"d": a, "k": doc["k"], "z": b}
        assert mf.dump_json(doc) == _reference(plain)
    for doc, plain in (
            ({"d": mf.encode_value(1), "k": marker}, {"d": 1, "k": marker}),
            ({"d": mf.encode_value(1), marker: 2}, {"d": 1, marker: 2}),
            ({"d": mf.encode_value([other]), "e": mf.encode_value({"x": marker})},
             {"d": [other], "e": {"x": marker}}),
            ({"d": mf.encode_value(marker), "e": [marker, other]},
             {"d": marker, "e": [marker, other]})):
        assert mf.dump_json(doc) == _reference(plain)


def _depth_before(data: bytes) -> int:
    """json_depth as it was written first (split at every quote), the oracle."""
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = b"".join(data.split(b'"')[0::2]).translate(
        bytes.maketrans(b"{}", b"[]"), bytes(c for c in range(256) if c not in b"[]{}"))
    depth = 0
    while skeleton:
        shorter = skeleton.replace(b"[]", b"")
        if len(shorter) == len(skeleton):
            break
        skeleton, depth = shorter, depth + 1
    return depth


def _depth_parsed(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth_parsed, value.values()), default=0)
    if isinstance(value, (list, tuple)):
        return 1 + max(map(_depth_parsed, value), default=0)
    return 0


@pytest.mark.parametrize("slice_size", [None, 7, 64])
def test_json_depth_against_the_parser_and_the_first_version(slice_size, monkeypatch):
    if slice_size:
        monkeypatch.setattr(mf, "_DEPTH_SLICE", slice_size)
    rnd = random.Random(41)
    for _ in range(2000):
        value = _value(rnd)
        text = json.dumps(value, ensure_ascii=rnd.random() < 0.5).encode("utf-8")
        assert mf.json_depth(text, 100) == _depth_parsed(value), text
        # any text at all: what the first version gave (slices aside, which it had not)
        junk = bytes(rnd.choice(b'""[]{}\\ax') for _ in range(rnd.randint(0, 40)))
        if slice_size is None:
            assert mf.json_depth(junk, 100) == _depth_before(junk), junk


def test_member_header_is_tarfiles():
    rnd = random.Random(5)
    names = ["table-00000/chunk-000000.bin", "manifest.json", "a" * 100, "a" * 101,
             "é/ü" * 20, "dir/" + "b" * 150]
    for _ in range(3000):
        name = rnd.choice(names)
        size = rnd.choice([0, 511, 512, 8 ** 11 - 1, 8 ** 11, rnd.randint(0, 2 ** 40)])
        mtime = rnd.choice([0, 1.5, 1.7e9, 8 ** 11 - 1, 8 ** 11])
        assert _outcome(member_header, name, size, mtime) == \
            _outcome(_tarfile_header, name, size, mtime)


def _outcome(f, *args):
    try:
        return f(*args)
    except ValueError as exc:       # a size a ustar header cannot hold
        return type(exc), str(exc)


@pytest.mark.parametrize("backend", ["tar", "zstd", "gzip"])
def test_many_small_tables_read_back(backend):
    buf = io.BytesIO()
    with open_dump(buf, "w", backend=backend, created=1.7e9) as w:
        w.set_info(server_version="15", client_encoding="UTF8", note={"tables": []})
        for i in range(300):
            tw = w.add_table(f"public.t{i:03d}", {"k": i, "names": ["a", "é"]}, ["id"],
                             ["integer"], "binary", {"n": i})
            if i % 3:
                tw.write(HEADER + TRAILER)
            tw.close()
        expected = w._manifest()
    buf.seek(0)
    with open_dump(buf) as r:
        assert r.verify().ok
        tables = r.tables()
        assert [t.table_id for t in tables] == [f"public.t{i:03d}" for i in range(300)]
        assert tables[7].definition == {"k": 7, "names": ["a", "é"]}
    # the manifest written a table at a time is the document json.dumps writes, with
    # each table's entry on a line of its own (JSON text holds no other newline)
    doc = json.loads(expected)
    assert _reference(doc) == expected.replace(b"\n", b"") + b"\n"
    lines = expected.splitlines()
    assert len(lines) == 2 + 300
    assert [json.loads(line.rstrip(b","))["table_id"] for line in lines[1:-1]] == \
        [f"public.t{i:03d}" for i in range(300)]
    assert doc["info"]["note"] == {"tables": []}
    if backend == "tar":
        with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as t:
            assert t.extractfile("manifest.json").read() == expected


def test_an_encoded_definition_is_spliced_in():
    buf = io.BytesIO()
    definition = {"k": [1, "é"], "z": None}
    with open_dump(buf, "w", backend="zstd") as w:
        for i, given in enumerate([definition, mf.encode_value(definition)]):
            with w.add_table(f"public.t{i}", given, ["id"], ["integer"]) as tw:
                tw.write(HEADER + TRAILER)
        for bad in (mf.EncodedJSON("[1]"), mf.EncodedJSON(""), "{}"):
            with pytest.raises(ValueError, match="definition"):
                w.add_table("public.bad", bad, ["id"], ["integer"])
    buf.seek(0)
    with open_dump(buf) as r:
        assert r.verify().ok
        assert [t.definition for t in r.tables()] == [definition, definition]


def test_manifest_of_no_tables():
    buf = io.BytesIO()
    with open_dump(buf, "w", backend="tar") as w:
        w.set_info(server_version="15")
        manifest = w._manifest()
    assert json.loads(manifest)["tables"] == []
    assert _reference(json.loads(manifest)) == manifest


@pytest.mark.parametrize("backend", ["tar", "zstd"])
def test_parallel_readers_share_one_index(backend, tmp_path):
    """A second reader of the same file takes the first one's table index (a parallel
    restore opens one reader per worker) and reads the same data through it; a
    reader of a pipe cannot."""
    path = tmp_path / "many.dc"
    with open_dump(str(path), "w", backend=backend) as w:
        for i in range(50):
            tw = w.add_table(f"public.t{i:02d}", {"k": i}, ["id"], ["integer"], "binary")
            tw.write(HEADER + b"\x00\x01" + (4).to_bytes(4, "big") + i.to_bytes(4, "big")
                     + TRAILER)
            tw.close()
    with open_dump(str(path)) as first, open_dump(str(path)) as second:
        second.share_index(first)
        assert second.tables() == first.tables()
        assert second._tables is first._tables and second.info == first.info
        for t in ("public.t00", "public.t31", "public.t49"):
            assert b"".join(second.read_raw(t)) == b"".join(first.read_raw(t))
        with pytest.raises(ArchiveError, match="no table 'public.nope'"):
            second.table("public.nope")
    with open(path, "rb") as f, open_dump(str(path)) as first:
        piped = open_dump(io.BufferedReader(NonSeekable(f)))
        with pytest.raises(ArchiveError, match="random access"):
            piped.share_index(first)


class _CountingFile(io.BytesIO):
    """A seekable in-memory file that counts the bytes read from it."""
    def __init__(self, data: bytes):
        super().__init__(data)
        self.bytes_read = 0

    def read(self, n=-1):
        out = super().read(n)
        self.bytes_read += len(out)
        return out

    def readinto(self, b):
        n = super().readinto(b)
        self.bytes_read += n
        return n


@pytest.mark.parametrize("recompress", ["zstd -d", "zstd -d | gzip"])
def test_recompressed_archive_reads_its_tables_in_one_pass(recompress):
    # a zstd archive decompressed (and maybe gzipped as one stream) keeps its
    # manifest, whose offsets no longer hold: reading every table in archive order
    # must not walk from the start for each one (that was quadratic: 1,000 tables
    # took 76 s to restore instead of 22 s)
    import gzip
    import zstandard
    tables = 60
    buf = io.BytesIO()
    with open_dump(buf, "w", backend="zstd") as w:
        for i in range(tables):
            with w.add_table(f"public.t{i:03d}", None, ["a"], ["int4"]) as t:
                t.write(HEADER + (1).to_bytes(2, "big") + (4).to_bytes(4, "big")
                        + i.to_bytes(4, "big") + TRAILER)
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(buf.getvalue()),
                                                    read_across_frames=True) as z:
        data = z.read()
    if "gzip" in recompress:
        data = gzip.compress(data)
    f = _CountingFile(data)
    with open_dump(f) as r:
        infos = r.tables()
        assert [t.table_id for t in infos] == [f"public.t{i:03d}" for i in range(tables)]
        after_listing = f.bytes_read
        for i, info in enumerate(infos):
            assert list(r.read_rows(info.table_id)) == [(i,)]
        # one pass over the file for all 60 tables, not one per table (the walk from
        # the start read ~30 times the file)
        assert f.bytes_read - after_listing < 2 * len(data), (f.bytes_read, len(data))
        # out of order still works (from the start again)
        assert list(r.read_rows("public.t007")) == [(7,)]
        assert list(r.read_rows("public.t059")) == [(59,)]
