"""The COPY format's Python side: one API, two implementations, one switch.

``DUMPCODEC_IMPL=c`` uses the Cython core ``dumpcodec._fastcopy`` (built from
``src/_fastcopy.pyx``) and fails with an ImportError naming the cause when it is not
built; ``DUMPCODEC_IMPL=python`` uses the pure-Python twin :mod:`dumpcodec.copy.pure`;
unset (or ``auto``), the C core is used when it imports, otherwise the twin with a
RuntimeWarning (never silently).  ``IMPL`` is the name of the active implementation.

What lives here:

- :mod:`.pure`: the pure-Python twin (the reference for behaviour and messages);
- :mod:`.types`: the per-type value codecs and the type registry, one module per
  family;
- :mod:`.values`: stand-ins for values Python's own types cannot hold;
- :mod:`.encodings`: PostgreSQL client encodings -> Python codecs;
- :mod:`.textcopy`: rows of text-format COPY data;
- :mod:`.joiner`: joins chunk streams into one COPY BINARY stream.

Both implementations export exactly the names of ``API`` below, written down with
their signatures in ``dumpcodec/_fastcopy.pyi`` (``tests/codec/test_codec_api.py`` holds
them to it; see :mod:`.pure` for the reference behaviour and docstrings):

``Decoder(types=None, *, names=None, raw=False)``
    Push decoder.  ``feed(data) -> list[tuple]`` accepts pieces split anywhere and
    returns the rows completed by this piece; ``close()`` raises CopyFormatError when
    the trailer was not seen.  ``types`` is one spec per column (OID, type name such
    as ``"numeric(12,2)"`` or ``"int4[]"``, or a ``types.TypeInfo``); ``None`` or
    ``raw=True`` gives ``bytes`` per field.  Attributes: ``rows`` (rows decoded),
    ``offset`` (bytes consumed), ``done`` (trailer seen), ``flags``, ``types`` (the
    resolved TypeInfos, None in raw mode).  Errors are sticky (feed/close raise again).
``iter_rows(fileobj, types=None, *, names=None, raw=False, read_size=...)``
    Pull form over a binary file object.
``Encoder(types, *, names=None)``
    ``header() -> bytes``, ``encode(rows) -> bytes`` (many rows, one block),
    ``trailer() -> bytes``; ``types=None`` is raw mode (bytes or None per value).
    A bad value raises EncodeError/TypeError naming the column and row (attributes
    ``row``, ``column``); ``encode`` is atomic (nothing of a failed call is emitted or
    counted) and the encoder stays usable.  ``rows``: rows encoded so far.
``write_stream(fileobj, rows, types, *, names=None, block_size=...) -> int``
    Header, rows, trailer to a file object in large writes; returns bytes written.
``Scanner(ncols=None)``
    Walks framing without decoding values.  ``feed(data) -> int`` returns rows
    completed in this piece; attributes ``rows``, ``offset``, ``done``, ``flags``,
    ``header_size``, ``tuple_end`` (absolute offset just past the last complete tuple).
    ``close()`` raises when the trailer was not seen.  Releases the GIL in C.
``Chunker(chunk_size=DEFAULT_CHUNK_SIZE, ncols=None)``
    Cuts one raw COPY BINARY stream into complete streams of bounded size:
    ``feed(data) -> list[(bytes, rows)]``, ``close() -> list[(bytes, rows)]``; each
    piece is the original header + whole tuples + trailer; a tuple larger than
    ``chunk_size`` goes alone in its piece; the last piece comes out of the ``feed``
    that sees the trailer; a stream without rows gives one piece without rows.
``scan(buf) -> (rows, size)``
    Validates a whole in-memory stream and counts its rows.
"""
from __future__ import annotations

import os
import warnings

#: The public names both implementations define (their ``__all__``).
API = ("Decoder", "iter_rows", "Encoder", "write_stream", "Scanner", "Chunker", "scan",
       "DEFAULT_CHUNK_SIZE", "DEFAULT_READ_SIZE", "DEFAULT_BLOCK_SIZE", "MAX_FIELD_SIZE",
       "SIGNATURE", "HEADER", "TRAILER", "HEADER_SIZE", "FLAG_OIDS")

_requested = os.environ.get("DUMPCODEC_IMPL", "auto").strip().lower() or "auto"

if _requested == "c":
    try:
        from .. import _fastcopy as _impl
    except ImportError as exc:  # never fall back when C was asked for
        raise ImportError(
            "DUMPCODEC_IMPL=c but the Cython core dumpcodec._fastcopy cannot be "
            f"imported ({exc}); build it with 'pip install .' or set DUMPCODEC_IMPL=python"
        ) from exc
    IMPL = "c"
elif _requested == "python":
    from . import pure as _impl
    IMPL = "python"
elif _requested == "auto":
    try:
        from .. import _fastcopy as _impl
        IMPL = "c"
    except ImportError as exc:
        warnings.warn(
            f"dumpcodec: C core not available ({exc}); using the pure-Python codec",
            RuntimeWarning, stacklevel=2)
        from . import pure as _impl
        IMPL = "python"
else:
    raise ImportError(f"DUMPCODEC_IMPL must be 'c', 'python' or 'auto', not {_requested!r}")

# Every name of the API comes from the active implementation; one it lacks is an
# import error here, never a silently missing attribute.
Decoder = _impl.Decoder
iter_rows = _impl.iter_rows
Encoder = _impl.Encoder
write_stream = _impl.write_stream
Scanner = _impl.Scanner
Chunker = _impl.Chunker
scan = _impl.scan
DEFAULT_CHUNK_SIZE: int = _impl.DEFAULT_CHUNK_SIZE
DEFAULT_READ_SIZE: int = _impl.DEFAULT_READ_SIZE
DEFAULT_BLOCK_SIZE: int = _impl.DEFAULT_BLOCK_SIZE
MAX_FIELD_SIZE: int = _impl.MAX_FIELD_SIZE
SIGNATURE: bytes = _impl.SIGNATURE
HEADER: bytes = _impl.HEADER
TRAILER: bytes = _impl.TRAILER
HEADER_SIZE: int = _impl.HEADER_SIZE
FLAG_OIDS: int = _impl.FLAG_OIDS

__all__ = ["IMPL", *API]
