"""DaCHS dumps, and what reading whole-table members needs.

A DaCHS dump (``gavo.rsc.dumping``) is a gzip tar with members ``table_NNN.dump``
(binary COPY) or ``table_NNN.textdump`` (text COPY), one per table, and ``index.txt``
(``member-name table-id`` lines) written last; no schema.  :class:`DumpReader` reads
that layout whatever the compression; the ``dachs`` backend forces it.  A DaCHS member
holds a whole table, so it is read in pieces and re-cut into complete COPY streams of
about ``chunk_size`` bytes (:func:`rechunk`), keeping memory bounded by one chunk.

Parsing text COPY into rows (``text_rows``) lives in :mod:`dumpcodec.copy.textcopy`;
the name is also importable from here.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from ..copy.textcopy import text_rows
from ..errors import ArchiveError, CopyFormatError
from .base import DumpReader, register_backend
from .tarball import GzipReader


def dachs_format(member: str) -> str:
    """COPY format of a DaCHS member by its suffix: ``.textdump`` is text."""
    return "text" if member.endswith(".textdump") else "binary"


def rechunk(pieces: Iterable, fmt: str, chunk_size: int, member: str) -> Iterator[bytes]:
    """Re-cut one COPY stream arriving in ``pieces`` into complete streams.

    Binary: through the codec's Chunker (each result header + whole tuples +
    trailer).  Text: cut after newlines.  A framing error raises ArchiveError naming
    the member.
    """
    if fmt == "binary":
        from ..copy import Chunker
        chunker = Chunker(chunk_size)
        try:
            for piece in pieces:
                for out, _rows in chunker.feed(bytes(piece)):
                    yield out
            for out, _rows in chunker.close():
                yield out
        except CopyFormatError as exc:
            raise ArchiveError(f"member {member!r}: {exc}") from exc
        return
    buf = bytearray()
    for piece in pieces:
        buf += piece
        if len(buf) >= chunk_size:
            cut = buf.rfind(b"\n")
            if cut >= 0:
                out = bytes(buf[:cut + 1])
                del buf[:cut + 1]
                yield out
    if buf:
        if not buf.endswith(b"\n"):
            raise ArchiveError(f"member {member!r}: text COPY data does not end with a "
                               "newline (truncated?)")
        yield bytes(buf)


class DachsReader(GzipReader):
    """A DaCHS dump: gzip tar, ``table_NNN.dump``/``.textdump``, ``index.txt`` last."""
    backend_name = "dachs"
    layout_hint = "dachs"


register_backend("dachs", DachsReader, None)

__all__ = ["DachsReader", "dachs_format", "rechunk", "text_rows", "DumpReader"]
