"""Fuzz harness: the archive reader (all backends, our layout and DaCHS's).

Input: 1 control byte + archive bytes.  Control bits:

    bits 0-2  how the bytes are opened: 0 auto-detect; 1 gzip-compress them first
              (they are a plain tar: this fuzzes the tar and metadata parsing
              through the gzip backend); 2 zstd-compress them first; 3 backend
              "dachs"; 4 backend "tar"; 5 backend "gzip"; 6 backend "zstd";
              7 auto-detect
    bit 3     read through a pipe-like (non-seekable) file: one pass, iter_tables()

On a seekable file: ``verify()``, ``tables(allow_incomplete=True)``, and for every
table ``read_raw`` and ``read_rows`` (decoded).  What may escape: DumpcodecError
subclasses only (ArchiveError, IncompleteArchiveError, ChecksumError, CopyFormatError
...) -- any other exception is a finding, and so is ``verify()`` raising at all (it
reports problems, never raises for them), and ``verify()`` calling an archive good
while reading it then fails or gives other row counts than the archive says.
Memory and time are bounded by libFuzzer's -rss_limit_mb and -timeout.

Run:  python fuzz/fuzz_archive.py -max_total_time=60 -rss_limit_mb=2048 fuzz/corpus/archive
      python fuzz/fuzz_archive.py --replay
"""
import gzip
import io
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

# Under atheris, dumpcodec is imported on the first input (see atheris_boot).
_ATHERIS = __name__ == "__main__" and not (len(sys.argv) > 1
                                           and sys.argv[1] in ("--replay", "--random"))
if not _ATHERIS:
    import fuzzlib

import zstandard  # noqa: E402

DEFAULT_CORPUS = os.path.join(_HERE, "corpus", "archive")
BACKENDS = {3: "dachs", 4: "tar", 5: "gzip", 6: "zstd"}
# Small limits so that a hostile input hits them fast (the defaults are for real
# dumps); the reader must say so with an ArchiveError, not run out of memory.
LIMITS = dict(max_member_size=1 << 22, max_meta_size=1 << 20, chunk_size=4096)
MAX_ROWS = 100_000


class Pipe(io.RawIOBase):
    """A read-only, non-seekable view of bytes, like a pipe."""

    def __init__(self, data: bytes):
        self._f = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b) -> int:
        data = self._f.read(len(b))
        b[:len(data)] = data
        return len(data)

    def tell(self):
        raise OSError("not seekable")

    def seek(self, *a):
        raise OSError("not seekable")


def pack(archive: bytes, mode: int = 0) -> bytes:
    return bytes([mode & 0xFF]) + archive


def prepare(data: bytes):
    mode = data[0] if data else 0
    payload = data[1:]
    how = mode & 7
    if how == 1:
        payload = gzip.compress(payload, compresslevel=1, mtime=0)
    elif how == 2:
        payload = zstandard.ZstdCompressor(level=1).compress(payload)
    return payload, BACKENDS.get(how), bool(mode & 8)


def _guard(what: str, fn):
    """Run fn; return (result, error) with only DumpcodecError as an error."""
    from dumpcodec.errors import DumpcodecError
    try:
        return fn(), None
    except DumpcodecError as exc:
        return None, exc
    except Exception as exc:  # noqa: BLE001 - a finding
        raise fuzzlib.FuzzFailure(f"{what}: unexpected {type(exc).__name__}: {exc!r}") from exc


def read_all(reader, info):
    rows = 0
    for _ in reader.read_raw(info.table_id):
        pass
    for _ in reader.read_rows(info.table_id):
        rows += 1
        if rows > MAX_ROWS:
            break
    return rows


def one_input(data: bytes) -> None:
    from dumpcodec.archive import open_dump
    payload, backend, pipe = prepare(data)
    f = Pipe(payload) if pipe else io.BytesIO(payload)
    reader, err = _guard("open_dump", lambda: open_dump(f, "r", backend=backend, **LIMITS))
    if err is not None:
        return
    with reader:
        if pipe:
            def one_pass():
                n = 0
                for _info, chunks in reader.iter_tables():
                    for chunk in chunks:
                        n += len(chunk)
                return n
            _guard("iter_tables (pipe)", one_pass)
            return
        report, err = _guard("verify", reader.verify)
        if err is not None:
            raise fuzzlib.FuzzFailure(f"verify() raised instead of reporting: {err!r}")
        tables, err = _guard("tables", lambda: reader.tables(allow_incomplete=True))
        if report.ok and err is not None:
            raise fuzzlib.FuzzFailure(f"verify() ok but tables() fails: {err!r}")
        for info in tables or []:
            rows, err = _guard(f"read {info.table_id!r}", lambda: read_all(reader, info))
            if report.ok:
                if err is not None:
                    raise fuzzlib.FuzzFailure(f"verify() ok but reading table "
                                              f"{info.table_id!r} fails: {err!r}")
                if info.rows is not None and rows != info.rows:
                    raise fuzzlib.FuzzFailure(f"verify() ok but table {info.table_id!r} "
                                              f"gives {rows} rows, archive says {info.rows}")


def make_one_input(impls=None):
    return one_input


if __name__ == "__main__":
    if _ATHERIS:
        import atheris_boot
        atheris_boot.run(globals(), ["dumpcodec.archive", "dumpcodec.archive.verify",
                                     "dumpcodec.archive.dachs", "dumpcodec.copy.textcopy"])
    else:
        fuzzlib.harness_main(make_one_input, DEFAULT_CORPUS)
