"""Sizes the archive layer writes and the limits it holds untrusted archives to.

One module so that the writer and the reader share them: a writer never writes a
member larger (or JSON nested deeper) than its own reader accepts (docs/FORMAT.md,
sections 5 and 6).  Limits on metadata that grows with the archive (footers, the
manifest, the index) grow with what the reader has already seen, so that an honest
archive of 100,000 tables or chunks reads while a small file cannot make a reader
hold much more than it holds itself.
"""
from __future__ import annotations

#: bytes of COPY data per chunk member unless ``chunk_size=`` says otherwise (the
#: codec's default too).  A reader holds a few chunks at a time (the one its consumer
#: still has, the one being read), a writer about three (the chunker's buffer, the
#: piece in the writer's thread and, for zstd, the buffer it is compressed from).
#: 8 MiB: members compress as well as 32 MiB ones (0.3% larger on the benchmark
#: tables) and a dump is faster, because an allocation of 32 MiB or more is always a
#: fresh mmap with glibc (about 100,000 page faults more per dump of 346 MB of COPY
#: data).
DEFAULT_CHUNK_SIZE = 8 << 20
#: largest chunk_size a writer accepts (members stay far below ustar's 8 GiB limit)
MAX_CHUNK_SIZE = 1 << 30
#: largest data member a reader accepts by default: one PostgreSQL row is at most 1 GiB
#: (the server's allocation limit), so no honest chunk is larger
DEFAULT_MAX_MEMBER_SIZE = (1 << 30) + (1 << 20)
#: the fixed part of the limits for manifest.json and index.txt (a reader option):
#: both grow with what the archive showed before them (:func:`manifest_limit`,
#: :func:`index_limit`), so that an honest archive of any number of tables reads
DEFAULT_MAX_META_SIZE = 64 << 20
#: largest dumpcodec.json, table header and end marker; the fixed part of a footer's
#: limit (:func:`footer_limit`)
MAX_SMALL_META_SIZE = 8 << 20
#: deepest nesting of arrays and objects in any JSON member.  dumpcodec's own
#: documents nest a few levels (a table definition about six); Python's parser would
#: raise RecursionError near 1,000.  A writer keeps a table header two levels below
#: the limit, because the manifest holds the header's fields two levels deeper (in
#: an object in the ``tables`` array).
MAX_JSON_DEPTH = 64

#: most bytes one member entry (FORMAT.md, section 5) takes in a footer or the
#: manifest: a name of at most 100 characters, five numbers, a SHA-256, indentation
MEMBER_ENTRY_BYTES = 1024
#: most bytes a manifest table entry adds beyond its header's and footer's content:
#: the header and footer member entries, ``compressed_size``, separators
TABLE_ENTRY_BYTES = 4 * MEMBER_ENTRY_BYTES
#: a seekable compressed archive's manifest is first read from the locator's offset,
#: before any header: there its limit is ``max_meta_size`` plus this many times the
#: compressed bytes from the manifest to the end of the file (each member is
#: compressed alone, and a JSON member shrinks far less than 16:1 that way).  A
#: larger one is read by the full pass instead, which sizes it by the headers.
FAST_PATH_RATIO = 16


def footer_limit(members: int) -> int:
    """Largest footer accepted for a table of ``members`` chunk members."""
    return MAX_SMALL_META_SIZE + MEMBER_ENTRY_BYTES * members


def manifest_limit(base: int, tables: int, table_meta_bytes: int) -> int:
    """Largest manifest accepted after ``tables`` tables whose headers and footers
    held ``table_meta_bytes`` bytes in all.

    A manifest entry repeats its table's header and footer fields two levels deeper
    (each line gains two spaces of indentation and holds at least two bytes, so it
    at most doubles) and adds two member entries; ``base`` (``max_meta_size``) covers
    the archive-level fields, which a writer keeps within :data:`MAX_SMALL_META_SIZE`.
    """
    return base + 2 * table_meta_bytes + TABLE_ENTRY_BYTES * tables


def index_entry_bytes(member: str, table_id: str) -> int:
    """What one ``index.txt`` line counts towards :func:`index_limit`."""
    return (len(member.encode("utf-8", "surrogateescape"))
            + len(table_id.encode("utf-8", "surrogateescape")) + 1)


def index_limit(base: int, entries_bytes: int) -> int:
    """Largest ``index.txt`` accepted for chunk members whose
    :func:`index_entry_bytes` sum to ``entries_bytes``: percent-encoding at most
    triples a byte, and a line adds a space and a newline."""
    return base + 3 * entries_bytes


__all__ = ["DEFAULT_CHUNK_SIZE", "MAX_CHUNK_SIZE", "DEFAULT_MAX_MEMBER_SIZE",
           "DEFAULT_MAX_META_SIZE", "MAX_SMALL_META_SIZE", "MAX_JSON_DEPTH",
           "MEMBER_ENTRY_BYTES", "TABLE_ENTRY_BYTES", "FAST_PATH_RATIO", "footer_limit",
           "manifest_limit", "index_entry_bytes", "index_limit"]
