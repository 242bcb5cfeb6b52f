"""Hostile and broken archives: each gives its error class and a message naming the
place, never a crash, a hang, or unbounded memory."""
import gzip
import hashlib
import io
import json
import tarfile
import time
import tracemalloc

import pytest
import zstandard

from codec_helpers import encoded_stream
from dumpcodec.archive import open_dump
from dumpcodec.archive._tar import END_OF_ARCHIVE, member_header, pad
from dumpcodec.errors import (ArchiveError, ChecksumError, DumpcodecError,
                              IncompleteArchiveError)

BACKENDS = ["tar", "gzip", "zstd"]


def stream(n, width=20):
    return encoded_stream([(b"%06d" % i, b"q" * width) for i in range(n)])


def good_archive(backend="tar", chunk_size=400, tables=2, rows=60):
    buf = io.BytesIO()
    with open_dump(buf, "w", backend=backend, chunk_size=chunk_size) as w:
        w.set_info(server_version="16", client_encoding="UTF8")
        for t in range(tables):
            with w.add_table(f"public.t{t}", {"v": 1}, ["a", "b"], ["bytea", "bytea"]) as tw:
                tw.write(stream(rows))
    return buf.getvalue()


def members_of(plain: bytes):
    with tarfile.open(fileobj=io.BytesIO(plain)) as tf:
        return [(m.name, tf.extractfile(m).read()) for m in tf.getmembers()]


def build(members, end=END_OF_ARCHIVE) -> bytes:
    out = []
    for name, data in members:
        out.append(member_header(name, len(data), 0) + data + bytes(pad(len(data))))
    return b"".join(out) + end


def reader(data, **kw):
    return open_dump(io.BytesIO(data), **kw)


def all_errors(data, **kw):
    """Run every read path; return the exceptions (must all be DumpcodecError)."""
    errs = []
    for action in ("tables", "verify", "rows", "iter"):
        try:
            with reader(data, **kw) as r:
                if action == "tables":
                    r.tables()
                elif action == "verify":
                    rep = r.verify()
                    if not rep.ok:
                        errs.append(ArchiveError("; ".join(rep.problems)))
                elif action == "rows":
                    for t in r.tables():
                        list(r.read_rows(t.table_id, decode=False))
                else:
                    for _info, chunks in r.iter_tables():
                        for _ in chunks:
                            pass
        except DumpcodecError as exc:
            errs.append(exc)
    return errs


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_at_any_offset(backend):
    data = good_archive(backend)
    cuts = sorted(set(list(range(0, len(data), max(1, len(data) // 120)))
                      + list(range(max(0, len(data) - 64), len(data)))))
    for cut in cuts:
        part = data[:cut]
        with reader(part, backend=backend) as r:
            with pytest.raises(ArchiveError):
                r.tables()
        with reader(part, backend=backend) as r:
            rep = r.verify()
            assert not rep.ok, cut
            assert not rep.complete, (cut, rep.problems)
    # pipe mode, a few cuts
    for cut in cuts[::10]:
        with open_dump(io.BufferedReader(_Pipe(data[:cut])), backend=backend) as r:
            with pytest.raises(ArchiveError):
                for _info, chunks in r.iter_tables():
                    for _ in chunks:
                        pass


class _Pipe(io.RawIOBase):
    def __init__(self, data):
        self._f = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, b):
        return self._f.readinto(b)


def test_truncated_archive_says_so_and_where():
    data = good_archive("tar")
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        inside = tf.getmember("table_001.00000.dump").offset_data + 3
    with reader(data[:inside]) as r:
        with pytest.raises(IncompleteArchiveError, match=r"archive ends in member 'table_\d+"):
            r.tables()


def _decompressed(data: bytes, backend: str) -> bytes:
    if backend == "gzip":
        return gzip.decompress(data)
    return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data),
                                                      read_across_frames=True).read()


@pytest.mark.parametrize("backend", ["gzip", "zstd"])
def test_corrupted_compressed_data(backend):
    """A flipped byte anywhere: verify calls the archive good only when what it holds
    is unchanged (some compressed bits do not matter: a gzip header's MTIME, a zstd
    window descriptor, unused bits of an entropy table), and reading either fails with
    an ArchiveError or gives exactly the original rows."""
    data = good_archive(backend, rows=400)
    content = _decompressed(data, backend)
    with reader(data) as r:
        original = {t.table_id: list(r.read_rows(t.table_id, decode=False))
                    for t in r.tables()}
    detected = flips = 0
    for pos in range(0, len(data), max(1, len(data) // 60)):
        bad = bytearray(data)
        bad[pos] ^= 0x5A
        bad = bytes(bad)
        flips += 1
        with reader(bad, backend=backend) as r:
            rep = r.verify()
        if rep.ok:
            assert _decompressed(bad, backend) == content, pos
        else:
            detected += 1
            assert rep.problems and all(isinstance(p, str) and p for p in rep.problems)
        for tid, rows in original.items():
            try:
                with reader(bad, backend=backend) as r:
                    got = list(r.read_rows(tid, decode=False))
            except DumpcodecError:
                continue
            assert got == rows, (pos, tid)
    assert detected > flips * 0.7, (detected, flips)


def _data_offset(plain: bytes, member: str) -> int:
    with tarfile.open(fileobj=io.BytesIO(plain)) as tf:
        return tf.getmember(member).offset_data


def test_bit_flip_in_a_member_is_a_checksum_error():
    data = bytearray(good_archive("tar"))
    name = "table_001.00002.dump"
    off = _data_offset(bytes(data), name) + 19 + 2 + 4 + 2   # inside the first value
    data[off] ^= 0x01
    data = bytes(data)
    with reader(data) as r:
        rep = r.verify()
    assert not rep.ok and rep.complete
    assert len(rep.problems) >= 1
    assert f"member '{name}' (table 'public.t1'): SHA-256" in rep.problems[0]
    with reader(data) as r:
        list(r.read_raw("public.t0"))            # the other table is fine
        with pytest.raises(ChecksumError, match=name):
            list(r.read_raw("public.t1"))
    # one pass: the footer check fails at the end of the table's chunks
    with open_dump(io.BufferedReader(_Pipe(data))) as r:
        it = r.iter_tables()
        info, chunks = next(it)
        list(chunks)
        assert info.verified
        info, chunks = next(it)
        with pytest.raises(ChecksumError, match=f"{name}.*public.t1"):
            list(chunks)


def test_rebuilt_archive_is_still_good():
    members = members_of(good_archive("tar"))
    data = build(members)
    with reader(data) as r:
        assert r.verify().ok


def test_index_naming_a_missing_member():
    members = members_of(good_archive("tar"))
    index = dict(members)["index.txt"] + b"table_009.00000.dump public.t9\n"
    members = [(n, index if n == "index.txt" else d) for n, d in members]
    with reader(build(members)) as r:
        rep = r.verify()
    assert any("index.txt: names 'table_009.00000.dump'" in p for p in rep.problems)
    assert not rep.ok


def test_dachs_index_naming_missing_member(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in (("table_000.dump", stream(3)),
                           ("index.txt", b"table_000.dump a#t\ntable_001.dump a#u\n")):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    with reader(buf.getvalue()) as r:
        with pytest.raises(ArchiveError, match="names member 'table_001.dump' .*'a#u'.* not in"):
            r.tables()
    with reader(buf.getvalue()) as r:
        assert not r.verify().ok


def test_duplicate_members():
    members = members_of(good_archive("tar"))
    dup = members[:3] + [members[2]] + members[3:]
    with reader(build(dup)) as r:
        with pytest.raises(ArchiveError, match="duplicate member 'table_000.00000.dump'"):
            r.tables()
    dachs = build([("table_000.dump", stream(1)), ("table_000.dump", stream(1)),
                   ("index.txt", b"table_000.dump x#y\n")])
    with reader(dachs) as r:
        with pytest.raises(ArchiveError, match="duplicate member"):
            r.tables()


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "chardev",
                                  "directory", "fifo"])
def test_unsafe_members_are_refused(kind):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        ti = tarfile.TarInfo({"dotdot": "../../etc/passwd",
                              "absolute": "/etc/passwd"}.get(kind, "table_000.dump"))
        data = stream(1)
        if kind == "symlink":
            ti.type, ti.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "hardlink":
            ti.type, ti.linkname = tarfile.LNKTYPE, "/etc/passwd"
        elif kind == "chardev":
            ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 1, 3
        elif kind == "directory":
            ti.type = tarfile.DIRTYPE
        elif kind == "fifo":
            ti.type = tarfile.FIFOTYPE
        if ti.type == tarfile.REGTYPE:
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        else:
            tf.addfile(ti)
        idx = b"table_000.dump x#y\n"
        ti = tarfile.TarInfo("index.txt")
        ti.size = len(idx)
        tf.addfile(ti, io.BytesIO(idx))
    expected = {"dotdot": "unsafe member name .*'\\.\\.'", "absolute": "absolute path",
                "symlink": "symbolic link", "hardlink": "hard link",
                "chardev": "character device", "directory": "directory",
                "fifo": "fifo"}[kind]
    with reader(buf.getvalue()) as r:
        with pytest.raises(ArchiveError, match=expected):
            r.tables()
    with reader(buf.getvalue()) as r:
        assert not r.verify().ok


def test_declared_size_larger_than_data():
    data = stream(5)
    tar = member_header("table_000.dump", 10_000_000, 0) + data
    with reader(tar) as r:
        with pytest.raises(IncompleteArchiveError,
                           match=r"archive ends in member 'table_000.dump'.*only \d+ present"):
            for t in r.tables():
                list(r.read_raw(t.table_id))
    with open_dump(io.BufferedReader(_Pipe(tar))) as r:
        rep = r.verify()
        assert not rep.ok and "table_000.dump" in rep.problems[0]
    # our layout: the tar header and the footer must agree
    members = members_of(good_archive("tar"))
    grown = [(n, d + b"\x00" * 10 if n == "table_000.00001.dump" else d) for n, d in members]
    with reader(build(grown)) as r:
        with pytest.raises(ArchiveError, match="table_000.00001.dump.*footer says"):
            r.tables()


def big_header(name: str, size: int) -> bytes:
    """A tar header declaring ``size`` bytes (GNU base-256 sizes beyond 8 GiB)."""
    ti = tarfile.TarInfo(name)
    ti.size = size
    return ti.tobuf(tarfile.GNU_FORMAT, "utf-8", "strict")


def _zstd_zeros_bomb(total: int) -> bytes:
    """A zstd stream of our layout whose third member holds ``total`` zero bytes,
    built from one compressed frame of 1 MiB of zeros repeated (never held whole)."""
    good = members_of(good_archive("tar", tables=1))
    cctx = zstandard.ZstdCompressor()
    head = cctx.compress(build(good[:2], end=b"") +
                         big_header("table_000.00000.dump", total))
    one_mib = cctx.compress(bytes(1 << 20))
    parts = [head] + [one_mib] * (total >> 20)
    return b"".join(parts)


def test_decompression_bomb_is_refused_fast_with_bounded_memory():
    total = 10 << 30      # 10 GiB of zeros
    bomb = _zstd_zeros_bomb(total)
    assert len(bomb) < 1_000_000
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        for action in ("tables", "verify", "iter"):
            with open_dump(io.BytesIO(bomb)) as r:
                if action == "tables":
                    with pytest.raises(ArchiveError, match="table_000.00000.dump.*declares "
                                       "10737418240 bytes, more than the .* limit"):
                        r.tables()
                elif action == "verify":
                    rep = r.verify()
                    assert not rep.ok and "decompression bomb" in rep.problems[0]
                else:
                    with pytest.raises(ArchiveError, match="limit"):
                        for _i, chunks in r.iter_tables():
                            list(chunks)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, peak
    assert time.monotonic() - t0 < 60     # generous: the point is "not 10 GiB worth"
    # a lower limit applies to honest-looking members too
    data = good_archive("tar", chunk_size=4000)
    with reader(data, max_member_size=1000) as r:
        with pytest.raises(ArchiveError, match="more than the 1000-byte limit"):
            for t in r.tables():
                list(r.read_raw(t.table_id))


def test_metadata_bombs_are_refused():
    huge = big_header("dumpcodec.json", 1 << 40)
    with reader(huge) as r:
        with pytest.raises(ArchiveError, match="dumpcodec.json.*declares 1099511627776 "
                           "bytes.*limit for metadata"):
            r.tables()
    dachs = build([("table_000.dump", stream(1))], end=b"") + \
        big_header("index.txt", 1 << 40)
    with reader(dachs) as r:
        with pytest.raises(ArchiveError, match="index.txt.*limit for metadata"):
            r.tables()


def _replace(members, name, data):
    return [(n, data if n == name else d) for n, d in members]


def test_manifest_not_json_or_wrong_version():
    members = members_of(good_archive("tar"))
    with reader(build(_replace(members, "manifest.json", b"{not json"))) as r:
        with pytest.raises(ArchiveError, match="manifest.json: not valid JSON"):
            r.tables()
    doc = json.loads(dict(members)["manifest.json"])
    doc["format_version"] = 2
    with reader(build(_replace(members, "manifest.json", json.dumps(doc).encode()))) as r:
        with pytest.raises(ArchiveError, match="manifest.json: unsupported format_version 2"):
            r.tables()
    doc = json.loads(dict(members)["dumpcodec.json"])
    doc["format_version"] = 99
    with reader(build(_replace(members, "dumpcodec.json", json.dumps(doc).encode()))) as r:
        with pytest.raises(ArchiveError, match="dumpcodec.json: unsupported format_version 99"):
            r.tables()
    doc = json.loads(dict(members)["manifest.json"])
    doc["tables"][0]["rows"] = "many"
    with reader(build(_replace(members, "manifest.json", json.dumps(doc).encode()))) as r:
        with pytest.raises(ArchiveError, match=r"manifest.json: tables\[0\] field 'rows' "
                           "must be int"):
            r.tables()
    doc = json.loads(dict(members)["manifest.json"])
    doc["tables"][1]["rows"] += 1
    with reader(build(_replace(members, "manifest.json", json.dumps(doc).encode()))) as r:
        rep = r.verify()
    assert any("manifest.json: table 'public.t1': rows/raw_size" in p for p in rep.problems)
    assert any("manifest.json: SHA-256 does not match dumpcodec.end" in p
               for p in rep.problems)


def test_missing_end_marker_and_members_after_it():
    members = members_of(good_archive("tar"))
    with reader(build(members[:-1])) as r:
        with pytest.raises(IncompleteArchiveError, match="without 'dumpcodec.end'"):
            r.tables()
    with reader(build(members[:-3])) as r:
        with pytest.raises(IncompleteArchiveError, match="without manifest.json"):
            r.tables()
    with reader(build(members + [("evil.sh", b"rm -rf /")])) as r:
        with pytest.raises(ArchiveError, match="member 'evil.sh' after the end marker"):
            r.tables()
    with reader(build(members[:2] + [("surprise.bin", b"x")] + members[2:])) as r:
        with pytest.raises(ArchiveError, match="unexpected member 'surprise.bin'"):
            r.tables()
    # data after the end-of-archive blocks
    with reader(build(members) + b"garbage") as r:
        with pytest.raises(ArchiveError, match="data after the end-of-archive blocks"):
            r.verify().ok or r.tables()


def test_bad_tar_header_in_the_middle():
    data = bytearray(good_archive("tar"))
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tf:
        off = tf.getmember("table_001.header.json").offset
    data[off + 100] ^= 0xFF     # the mode field: header checksum no longer matches
    with reader(bytes(data)) as r:
        with pytest.raises(ArchiveError, match="invalid tar header at stream offset "
                           f"{off} after member 'table_000.footer.json'"):
            r.tables()


def test_footer_for_another_table_and_hash_of_definition_kept():
    members = members_of(good_archive("tar"))
    doc = json.loads(dict(members)["table_001.footer.json"])
    doc["table_id"] = "public.other"
    with reader(build(_replace(members, "table_001.footer.json",
                               json.dumps(doc).encode()))) as r:
        with pytest.raises(ArchiveError, match="footer is for table 'public.other'"):
            r.tables()
    # sanity: the stored definition is exactly what was given
    with reader(build(members)) as r:
        assert r.tables()[0].definition == {"v": 1}
        assert hashlib.sha256(dict(members)["table_000.00000.dump"]).hexdigest() == \
            r.tables()[0].members[0].sha256


def test_header_changed_after_the_fact_is_caught_by_the_manifest():
    members = members_of(good_archive("tar"))
    doc = json.loads(dict(members)["table_001.header.json"])
    doc["extra"] = {"sneaky": True}
    with reader(build(_replace(members, "table_001.header.json",
                               json.dumps(doc).encode()))) as r:
        rep = r.verify()
    assert not rep.ok
    assert any("table 'public.t1': header member 'table_001.header.json' does not match"
               in p for p in rep.problems), rep.problems
    with pytest.raises(ValueError, match="chunk_size must be an integer from 64"):
        open_dump(io.BytesIO(), "w", chunk_size=1 << 40)
