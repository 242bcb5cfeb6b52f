"""Text-format COPY data: rows from whole lines, with PostgreSQL's escapes undone.

Used for DaCHS ``.textdump`` members and for our own text-format tables.  The text is
in the dump's client encoding, decoded through the one map of
:mod:`dumpcodec.copy.encodings`.
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator, List, Optional

from ..errors import ArchiveError
from .encodings import python_encoding

__all__ = ["text_rows"]

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
    without a Python codec raises ArchiveError (when decoding: the archive says its
    text is in it) rather than being read as something else.  Bytes invalid in that
    encoding are kept as lone surrogates.
    """
    codec = None
    if decode:
        try:
            codec = python_encoding(encoding or "UTF8")[0]
        except ValueError as exc:
            raise ArchiveError(f"cannot decode text COPY data: {exc}") from None
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
