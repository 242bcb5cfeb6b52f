"""DaCHS dumps, and what reading whole-table members needs.

A DaCHS dump (``gavo.rsc.dumping``) is a gzip tar with members ``table_NNN.dump``
(binary COPY) or ``table_NNN.textdump`` (text COPY), one per table, and ``index.txt``
(``member-name table-id`` lines) written last; no schema.  :class:`DumpReader` reads
that layout whatever the compression; the ``dachs`` backend forces it.  A DaCHS member
holds a whole table, so it is read in pieces and re-cut into complete COPY streams of
about ``chunk_size`` bytes (:func:`rechunk`), keeping memory bounded by one chunk.

Also here: parsing text COPY into rows (:func:`text_rows`), used for ``.textdump``
members and our own text-format tables.
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator, List, Optional

from ..errors import ArchiveError, CopyFormatError
from ..pgtypes import python_encoding
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
        from ..codec import Chunker
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


_ESCAPES = {ord("b"): b"\b", ord("f"): b"\f", ord("n"): b"\n", ord("r"): b"\r",
            ord("t"): b"\t", ord("v"): b"\v"}
_ESC_RE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|(.))", re.S)


def _unescape(field: bytes) -> bytes:
    def sub(m):
        if m.group(1) is not None:
            return bytes([int(m.group(1), 8) & 0xFF])
        if m.group(2) is not None:
            return bytes([int(m.group(2), 16)])
        c = m.group(3)[0]
        return _ESCAPES.get(c, m.group(3))
    return _ESC_RE.sub(sub, field) if b"\\" in field else field


def text_rows(chunks: Iterable, decode: bool = True,
              encoding: Optional[str] = None) -> Iterator[tuple]:
    """Rows of text COPY chunks (each whole lines): tuples of str (bytes unless
    ``decode``) with escapes undone, None for ``\\N``.

    ``encoding`` is the PostgreSQL client encoding of the data (UTF8 when None); one
    without a Python codec raises ValueError (when decoding) rather than being read
    as UTF-8.  Bytes invalid in that encoding are kept as lone surrogates.
    """
    codec = python_encoding(encoding or "UTF8")[0] if decode else None
    for chunk in chunks:
        data = bytes(chunk)
        lines: List[bytes] = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for line in lines:
            if line == b"\\.":
                return
            fields = []
            for f in line.split(b"\t"):
                if f == b"\\N":
                    fields.append(None)
                else:
                    raw = _unescape(f)
                    fields.append(raw.decode(codec, "surrogateescape") if decode else raw)
            yield tuple(fields)


class DachsReader(GzipReader):
    """A DaCHS dump: gzip tar, ``table_NNN.dump``/``.textdump``, ``index.txt`` last."""
    backend_name = "dachs"
    layout_hint = "dachs"


register_backend("dachs", DachsReader, None)

__all__ = ["DachsReader", "dachs_format", "rechunk", "text_rows", "DumpReader"]
