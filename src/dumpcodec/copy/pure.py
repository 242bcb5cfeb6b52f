"""Pure-Python twin of the COPY BINARY codec: framing, streaming, errors.

This module is the reference implementation of the API described in
:mod:`dumpcodec.copy` (written down in ``dumpcodec/_fastcopy.pyi``); the Cython core
``dumpcodec._fastcopy`` mirrors it, including every error message (it imports the
message texts of the ``MESSAGES`` block below).  The per-type value codecs live in
:mod:`dumpcodec.copy.types`.

Stream layout (all integers big-endian)::

    header   11-byte signature, int32 flags, int32 extension length, extension bytes
    tuple    int16 field count, [OID field if flag bit 16], per field int32 length
             (-1 = NULL) and that many bytes
    trailer  int16 -1

Error offsets are absolute byte positions from the start of the stream: the header
element in error (0 signature, 11 flags, 15 extension length), the start of the tuple
for tuple-level errors, and the field's length word for field-level errors
(including value decoding errors).  Rows and columns are 1-based.  The message of an
error depends only on the stream's content, never on how it was split into pieces.

Truncation is reported at ``close()``: the last structure begun and the byte where the
stream ends.  An error is sticky: after one, ``feed()`` and ``close()`` raise it again.
"""
from __future__ import annotations

import struct
from typing import Any, BinaryIO, Iterable, Iterator, List, Optional, Sequence, Tuple

from ..errors import CopyFormatError, EncodeError
from .types.core import ER_SIZE, EV_VALUE
from .types.registry import resolve as _resolve

__all__ = [
    "Decoder", "iter_rows", "Encoder", "write_stream", "Scanner", "Chunker", "scan",
    "DEFAULT_CHUNK_SIZE", "DEFAULT_READ_SIZE", "DEFAULT_BLOCK_SIZE", "MAX_FIELD_SIZE",
    "SIGNATURE", "HEADER", "TRAILER", "HEADER_SIZE", "FLAG_OIDS",
]

#: Largest piece of one COPY BINARY stream the Chunker emits (a lone larger tuple
#: still gets its own piece).
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024  # the archive layer uses the same default
#: Bytes per read() in iter_rows.
DEFAULT_READ_SIZE = 1024 * 1024
#: Bytes per write() in write_stream (rows are encoded in blocks about this size).
DEFAULT_BLOCK_SIZE = 1024 * 1024
#: Largest declared field (and header extension) length accepted, checked before
#: anything is allocated.  PostgreSQL itself cannot hold a field above 1 GiB - 1.
MAX_FIELD_SIZE = 1 << 30

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
#: Header we write: signature, flags 0, extension length 0.
HEADER = SIGNATURE + b"\x00\x00\x00\x00\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
HEADER_SIZE = 19
FLAG_OIDS = 1 << 16
# Bits 16-31 are critical; we understand only bit 16.
_CRITICAL_UNKNOWN = 0xFFFE0000

# ---------------------------------------------------------------------------
# MESSAGES.  Every CopyFormatError message is ``PREFIX + ": " + TEXT``.  The C core
# copies these strings verbatim; change them here and there together.
# ---------------------------------------------------------------------------
P_HEADER = "header at byte {off}"
P_ROW = "row {row} at byte {off}"
P_FIELD = "field {col} of row {row} at byte {off}"
P_FIELD_NAMED = 'field {col} ("{name}") of row {row} at byte {off}'
P_OID = "OID field of row {row} at byte {off}"
P_STREAM = "byte {off}"

E_SIGNATURE = "not a COPY BINARY stream (bad signature)"
E_CRITICAL_FLAGS = "unknown critical flags 0x{flags:08x}"
E_EXT_NEGATIVE = "invalid header extension length {n}"
E_EXT_LIMIT = "header extension length {n} exceeds the 1 GiB limit"
E_END_HEADER = "stream ends at byte {end} inside the header"
E_END_TRAILER = "stream ends at byte {end} before the trailer"
E_END_COUNT = "stream ends at byte {end} inside the field count"
E_END_FIELD = "stream ends at byte {end} inside the field"
E_FIELD_COUNT = "invalid field count {n}"
E_FIELD_COUNT_MISMATCH = "{n} fields, expected {ncols}"
E_LENGTH_NEGATIVE = "invalid length {n}"
E_LENGTH_LIMIT = "length {n} exceeds the 1 GiB limit"
E_OID_LENGTH = "invalid OID length {n}"
E_AFTER_TRAILER = "data after the trailer"
# Value errors: TEXT is types.core.EV_VALUE, "invalid {name} value: {reason}", where
# reason is the message of the ValueError the type's decode function raised (see
# dumpcodec.copy.types), e.g. "invalid int4 value: 3 bytes, expected 4".  The whole tuple's
# framing is validated before any of its values is decoded.

# Encoder messages (EncodeError for bad values, TypeError for wrong Python types):
#   ``EP_ROW + ": " + TEXT`` or ``EP_FIELD[_NAMED] + ": " + TEXT``.
EP_ROW = "row {row}"
EP_FIELD = "field {col} of row {row}"
EP_FIELD_NAMED = 'field {col} ("{name}") of row {row}'
EE_ROW_LENGTH = "{n} values, expected {ncols}"
EE_NOT_SEQUENCE = "a row must be a sequence, not {tname}"
EE_RAW_TYPE = "expected bytes or None, not {tname}"
EE_RAW_LIMIT = "length {n} exceeds the 1 GiB limit"

_h = struct.Struct(">h")
_i = struct.Struct(">i")
_unpack_h = _h.unpack_from
_unpack_i = _i.unpack_from
_pack_i = _i.pack
_NULL_WORD = b"\xff\xff\xff\xff"


def _field_prefix(col: int, row: int, off: int, names: Optional[Sequence[str]]) -> str:
    if col == 0:
        return P_OID.format(row=row, off=off)
    if names is not None and 0 < col <= len(names):
        return P_FIELD_NAMED.format(col=col, name=names[col - 1], row=row, off=off)
    return P_FIELD.format(col=col, row=row, off=off)


def _header_error(off: int, text: str) -> CopyFormatError:
    return CopyFormatError(P_HEADER.format(off=off) + ": " + text, off, None, None)


def _row_error(row: int, off: int, text: str) -> CopyFormatError:
    return CopyFormatError(P_ROW.format(row=row, off=off) + ": " + text, off, row, None)


def _field_error(col: int, row: int, off: int, text: str,
                 names: Optional[Sequence[str]]) -> CopyFormatError:
    return CopyFormatError(_field_prefix(col, row, off, names) + ": " + text, off, row, col)


class _Incomplete(Exception):
    """Internal: the buffer ends inside a tuple; carries what is needed next."""


class _Framing:
    """State shared by Decoder, Scanner and Chunker: buffer, header, offsets.

    The buffer is ``_buf[_pos:]``; ``_base`` is the absolute offset of ``_buf[0]``.
    Pieces arriving while the next structure is still incomplete are kept in a list
    and joined only once enough bytes are there (``_need``, absolute), so feeding a
    large tuple in many small pieces stays linear.
    """

    def __init__(self, ncols: Optional[int], names: Optional[Sequence[str]]):
        if ncols is not None and not 0 <= ncols <= 32767:
            raise ValueError(f"ncols must be between 0 and 32767, not {ncols}")
        self._ncols = ncols
        self._names = list(names) if names is not None else None
        self._buf = b""
        self._pos = 0
        self._base = 0
        self._pending: List[bytes] = []
        self._plen = 0
        self._need = 0
        self._error: Optional[CopyFormatError] = None
        self.rows = 0
        self.done = False
        self.flags: Optional[int] = None
        self.header_size: Optional[int] = None
        self._header_bytes = b""
        self._oids = False
        self.tuple_end = 0
        self._trailer_at = -1

    @property
    def offset(self) -> int:
        """Bytes consumed: the absolute offset just past the last complete element."""
        return self._base + self._pos

    def _take(self, data) -> bool:
        """Add a piece; return True when there is enough to try to parse."""
        if self._error is not None:
            raise self._error
        if not data:
            return False
        if self.done:
            off = self._trailer_at + 2
            self._error = CopyFormatError(
                P_STREAM.format(off=off) + ": " + E_AFTER_TRAILER, off, None, None)
            raise self._error
        piece = bytes(data)
        self._pending.append(piece)
        self._plen += len(piece)
        if self._base + len(self._buf) + self._plen < self._need:
            return False
        rest = self._buf[self._pos:] if self._pos < len(self._buf) else b""
        self._base += self._pos
        if rest:
            self._pending.insert(0, rest)
        self._buf = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pos = 0
        self._pending = []
        self._plen = 0
        return True

    def _fail(self, exc: CopyFormatError) -> CopyFormatError:
        self._error = exc
        return exc

    def _parse_header(self) -> bool:
        """Parse the header when complete; check the signature as early as possible."""
        buf = self._buf
        n = len(buf)
        if n < 11:
            if buf != SIGNATURE[:n]:
                raise self._fail(_header_error(0, E_SIGNATURE))
            self._need = 11
            return False
        if buf[:11] != SIGNATURE:
            raise self._fail(_header_error(0, E_SIGNATURE))
        if n < HEADER_SIZE:
            self._need = HEADER_SIZE
            return False
        flags = _unpack_i(buf, 11)[0] & 0xFFFFFFFF
        if flags & _CRITICAL_UNKNOWN:
            raise self._fail(_header_error(11, E_CRITICAL_FLAGS.format(
                flags=flags & _CRITICAL_UNKNOWN)))
        ext = _unpack_i(buf, 15)[0]
        if ext < 0:
            raise self._fail(_header_error(15, E_EXT_NEGATIVE.format(n=ext)))
        if ext > MAX_FIELD_SIZE:
            raise self._fail(_header_error(15, E_EXT_LIMIT.format(n=ext)))
        if n < HEADER_SIZE + ext:
            self._need = HEADER_SIZE + ext
            return False
        self.flags = flags
        self._oids = bool(flags & FLAG_OIDS)
        self.header_size = HEADER_SIZE + ext
        self._header_bytes = buf[:HEADER_SIZE + ext]
        self._pos = HEADER_SIZE + ext
        self.tuple_end = self.header_size
        self._need = 0
        return True

    def _check_close(self) -> None:
        """Raise the truncation error if the trailer was not seen."""
        if self._error is not None:
            raise self._error
        if self.done:
            return
        # Join whatever is pending; nothing more will come.
        if self._pending:
            self._take_all()
        buf, pos = self._buf, self._pos
        end = self._base + len(buf)
        if self.header_size is None:
            # Check what is there (a bad signature wins over truncation, whatever
            # the split), then report the truncation.
            self._need = 0
            self._parse_header()
            raise self._fail(_header_error(0, E_END_HEADER.format(end=end)))
        row = self.rows + 1
        start = self._base + pos
        n = len(buf)
        if pos == n:
            raise self._fail(_row_error(row, start, E_END_TRAILER.format(end=end)))
        if pos + 2 > n:
            raise self._fail(_row_error(row, start, E_END_COUNT.format(end=end)))
        # Find the field we stopped in (the tuple was valid up to here, or feed()
        # would have raised).
        p = pos + 2
        nf = _unpack_h(buf, pos)[0]
        col = 0 if self._oids else 1
        last = nf
        while col <= last:
            if p + 4 > n:
                break
            ln = _unpack_i(buf, p)[0]
            if ln > 0 and p + 4 + ln > n:
                break
            p += 4 + (ln if ln > 0 else 0)
            col += 1
        raise self._fail(_field_error(col, row, self._base + p,
                                      E_END_FIELD.format(end=end), self._names))

    def _take_all(self) -> None:
        rest = self._buf[self._pos:]
        self._base += self._pos
        self._buf = b"".join([rest] + self._pending)
        self._pos = 0
        self._pending = []
        self._plen = 0

    def _walk_tuple(self, buf: bytes, pos: int, n: int) -> int:
        """Validate the framing of the tuple starting at ``pos``; return its end.

        Raises _Incomplete (after setting ``_need``) when the buffer ends inside it,
        CopyFormatError on malformed framing.  Returns -1 for the trailer.
        """
        if pos + 2 > n:
            self._need = self._base + pos + 2
            raise _Incomplete
        nf = _unpack_h(buf, pos)[0]
        if nf == -1:
            return -1
        row = self.rows + 1
        if nf < 0:
            raise self._fail(_row_error(row, self._base + pos, E_FIELD_COUNT.format(n=nf)))
        ncols = self._ncols
        if ncols is None:
            self._ncols = ncols = nf
        elif nf != ncols:
            raise self._fail(_row_error(row, self._base + pos,
                                        E_FIELD_COUNT_MISMATCH.format(n=nf, ncols=ncols)))
        p = pos + 2
        if self._oids:
            if p + 4 > n:
                self._need = self._base + p + 4
                raise _Incomplete
            ln = _unpack_i(buf, p)[0]
            if ln != 4:
                raise self._fail(_field_error(0, row, self._base + p,
                                              E_OID_LENGTH.format(n=ln), self._names))
            if p + 8 > n:
                self._need = self._base + p + 8
                raise _Incomplete
            p += 8
        for col in range(1, nf + 1):
            if p + 4 > n:
                self._need = self._base + p + 4
                raise _Incomplete
            ln = _unpack_i(buf, p)[0]
            if ln < 0:
                if ln == -1:
                    p += 4
                    continue
                raise self._fail(_field_error(col, row, self._base + p,
                                              E_LENGTH_NEGATIVE.format(n=ln), self._names))
            if ln > MAX_FIELD_SIZE:
                raise self._fail(_field_error(col, row, self._base + p,
                                              E_LENGTH_LIMIT.format(n=ln), self._names))
            p += 4 + ln
            if p > n:
                self._need = self._base + p
                raise _Incomplete
        return p

    def _see_trailer(self, pos: int, n: int) -> None:
        self._trailer_at = self._base + pos
        self.done = True
        self._pos = pos + 2
        self.tuple_end = self._base + pos
        if pos + 2 < n:
            off = self._base + pos + 2
            raise self._fail(CopyFormatError(
                P_STREAM.format(off=off) + ": " + E_AFTER_TRAILER, off, None, None))


class Decoder(_Framing):
    """Push decoder: ``feed(data)`` pieces split anywhere, get complete rows back.

    ``types``: one type spec per column (OID, name such as ``"numeric(12,2)"`` or
    ``"int4[]"``, or a ``types.TypeInfo``), resolved once here.  Without types (or
    with ``raw=True``) each field is ``bytes`` (or None for NULL); without types the
    column count is taken from the first tuple.  ``names`` (optional, one per column)
    appear in error messages.  Rows are tuples; the OID field of old WITH OIDS
    streams is checked and dropped.
    """

    def __init__(self, types: Optional[Sequence[Any]] = None, *,
                 names: Optional[Sequence[str]] = None, raw: bool = False):
        self._infos = None
        ncols = None
        if types is not None:
            types = list(types)
            ncols = len(types)
            if not raw:
                self._infos = [_resolve(t) for t in types]
        if names is not None and ncols is not None and len(names) != ncols:
            raise ValueError(f"{len(names)} names for {ncols} columns")
        super().__init__(ncols, names)
        self._decoders = [ti.decode for ti in self._infos] if self._infos is not None \
            else None
        self._plan = [(ti.decode, ti.struct.unpack_from if ti.struct is not None else None,
                       ti.size) for ti in self._infos] if self._infos is not None else None

    def _value_error(self, col0: int, off: int, exc: Exception) -> CopyFormatError:
        """A value that does not decode: report field, row, byte and the reason."""
        text = EV_VALUE.format(name=self._infos[col0].name, reason=exc)
        return self._fail(_field_error(col0 + 1, self.rows + 1, self._base + off, text,
                                       self._names))

    @property
    def types(self):
        """The resolved TypeInfo per column, or None in raw mode."""
        return None if self._infos is None else list(self._infos)

    def feed(self, data) -> List[tuple]:
        """Add bytes; return the rows completed by them (possibly none)."""
        if not self._take(data):
            return []
        if self.header_size is None and not self._parse_header():
            return []
        if self._decoders is None:
            return self._rows_raw()
        return self._rows_typed()

    def close(self) -> None:
        """Declare the end of the stream; raise CopyFormatError if it was truncated."""
        self._check_close()

    def _rows_raw(self) -> List[tuple]:
        buf = self._buf
        n = len(buf)
        pos = self._pos
        out: List[tuple] = []
        append = out.append
        unpack_i = _unpack_i
        unpack_h = _unpack_h
        walk = self._walk_tuple
        oids = self._oids
        limit = MAX_FIELD_SIZE
        try:
            while True:
                ncols = self._ncols
                row = []
                radd = row.append
                if oids or ncols is None or pos + 2 > n or unpack_h(buf, pos)[0] != ncols:
                    # first tuple, trailer, OID streams, truncation, errors
                    end = walk(buf, pos, n)
                    if end < 0:
                        self._see_trailer(pos, n)
                        break
                    p = pos + (10 if oids else 2)
                    while p < end:
                        ln = unpack_i(buf, p)[0]
                        p += 4
                        if ln < 0:
                            radd(None)
                        else:
                            radd(buf[p:p + ln])
                            p += ln
                else:
                    # one pass for the common case; any doubt goes to _walk_tuple,
                    # which raises the exact error (or _Incomplete)
                    p = pos + 2
                    for _ in range(ncols):
                        if p + 4 > n:
                            break
                        ln = unpack_i(buf, p)[0]
                        p += 4
                        if ln < 0:
                            if ln != -1:
                                break
                            radd(None)
                            continue
                        if ln > limit or p + ln > n:
                            break
                        radd(buf[p:p + ln])
                        p += ln
                    if len(row) != ncols:
                        walk(buf, pos, n)
                    end = p
                append(tuple(row))
                self.rows += 1
                pos = end
        except _Incomplete:
            pass
        finally:
            if not self.done:
                self._pos = pos
                self.tuple_end = self._base + pos
        return out

    def _rows_typed(self) -> List[tuple]:
        buf = self._buf
        n = len(buf)
        pos = self._pos
        out: List[tuple] = []
        append = out.append
        unpack_i = _unpack_i
        unpack_h = _unpack_h
        walk = self._walk_tuple
        plan = self._plan
        oids = self._oids
        ncols = self._ncols
        limit = MAX_FIELD_SIZE
        try:
            while True:
                # Fast framing pass for the common case (a complete, well-formed
                # tuple); anything else goes to _walk_tuple, which raises the exact
                # error or _Incomplete, or handles the trailer and OID streams.
                lens = []
                if oids or pos + 2 > n or unpack_h(buf, pos)[0] != ncols:
                    end = walk(buf, pos, n)
                    if end < 0:
                        self._see_trailer(pos, n)
                        break
                    p = pos + (10 if oids else 2)
                    for _ in plan:
                        ln = unpack_i(buf, p)[0]
                        lens.append(ln)
                        p += 4 + (ln if ln > 0 else 0)
                else:
                    ladd = lens.append
                    p = pos + 2
                    for _ in plan:
                        if p + 4 > n:
                            break
                        ln = unpack_i(buf, p)[0]
                        if ln < -1 or ln > limit:
                            break
                        ladd(ln)
                        p += 4 + (ln if ln > 0 else 0)
                    if p > n or len(lens) != ncols:
                        walk(buf, pos, n)  # raises: truncated or malformed
                    end = p
                p = pos + (10 if oids else 2)
                row = []
                radd = row.append
                for (dec, unpack_from, size), ln in zip(plan, lens):
                    p += 4
                    if ln < 0:
                        radd(None)
                        continue
                    if ln == size and unpack_from is not None:
                        # fixed-width number: unpack in place, no slice
                        radd(unpack_from(buf, p)[0])
                    else:
                        try:
                            if size >= 0 and ln != size:
                                raise ValueError(ER_SIZE.format(n=ln, size=size))
                            radd(dec(buf[p:p + ln]))
                        except (ValueError, struct.error, OverflowError) as exc:
                            raise self._value_error(len(row), p - 4, exc) from None
                    p += ln
                append(tuple(row))
                self.rows += 1
                pos = end
        except _Incomplete:
            pass
        finally:
            if not self.done:
                self._pos = pos
                self.tuple_end = self._base + pos
        return out


def iter_rows(fileobj: BinaryIO, types: Optional[Sequence[Any]] = None, *,
              names: Optional[Sequence[str]] = None, raw: bool = False,
              read_size: int = DEFAULT_READ_SIZE) -> Iterator[tuple]:
    """Pull form: yield the rows of the COPY BINARY stream read from ``fileobj``.

    Reads ``read_size`` bytes at a time; raises CopyFormatError on a malformed or
    truncated stream (truncation once the file is exhausted).
    """
    return pull_rows(Decoder(types, names=names, raw=raw), fileobj, read_size)


def pull_rows(dec: Any, fileobj: BinaryIO, read_size: int) -> Iterator[tuple]:
    """The pull loop over any Decoder (shared with the C core's ``iter_rows``)."""
    read = fileobj.read
    while True:
        data = read(read_size)
        if not data:
            break
        rows = dec.feed(data)
        if rows:
            yield from rows
    dec.close()


class Scanner(_Framing):
    """Walk the framing without decoding values: count rows, validate structure.

    ``feed(data) -> int`` returns the number of rows completed by this piece.
    ``tuple_end`` is the absolute offset just past the last complete tuple (the
    header's end before the first), ``header_size`` the size of the header including
    its extension, ``flags`` the header flags.  ``ncols``: expected field count, or
    None to take it from the first tuple.
    """

    def __init__(self, ncols: Optional[int] = None):
        super().__init__(ncols, None)

    def feed(self, data) -> int:
        if not self._take(data):
            return 0
        if self.header_size is None and not self._parse_header():
            return 0
        return self._scan()

    def close(self) -> None:
        self._check_close()

    def _scan(self) -> int:
        buf = self._buf
        n = len(buf)
        pos = self._pos
        walk = self._walk_tuple
        before = self.rows
        try:
            while True:
                end = walk(buf, pos, n)
                if end < 0:
                    self._see_trailer(pos, n)
                    break
                self.rows += 1
                pos = end
        except _Incomplete:
            pass
        finally:
            if not self.done:
                self._pos = pos
                self.tuple_end = self._base + pos
        return self.rows - before


def scan(buf) -> Tuple[int, int]:
    """Validate a whole in-memory COPY BINARY stream; return ``(rows, size)``."""
    sc = Scanner()
    sc.feed(buf)
    sc.close()
    return sc.rows, len(buf)


class Chunker(_Framing):
    """Cut one COPY BINARY stream into complete streams of at most ``chunk_size`` bytes.

    Each piece is the original header (flags and extension kept) + whole tuples +
    trailer, at most ``chunk_size`` bytes unless a single tuple is larger (it then
    goes alone in its piece).  ``feed(data)`` and ``close()`` return the finished
    pieces as ``(bytes, rows)``; the last piece is returned as soon as the trailer is
    seen.  A stream without rows gives one piece without rows (so an empty table is
    still one valid stream).  Memory is bounded by about one piece.
    """

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE, ncols: Optional[int] = None):
        if chunk_size < HEADER_SIZE + 2:
            raise ValueError(f"chunk_size must be at least {HEADER_SIZE + 2}, not {chunk_size}")
        super().__init__(ncols, None)
        self.chunk_size = chunk_size
        self._parts: List[bytes] = []
        self._part_size = 0
        self._part_rows = 0
        self._emitted = 0

    def feed(self, data) -> List[Tuple[bytes, int]]:
        if not self._take(data):
            return []
        if self.header_size is None and not self._parse_header():
            return []
        return self._chunk()

    def close(self) -> List[Tuple[bytes, int]]:
        self._check_close()
        return []

    def _flush(self, out: List[Tuple[bytes, int]]) -> None:
        out.append((b"".join([self._header_bytes] + self._parts + [TRAILER]),
                    self._part_rows))
        self._emitted += 1
        self._parts = []
        self._part_size = 0
        self._part_rows = 0

    def _chunk(self) -> List[Tuple[bytes, int]]:
        buf = self._buf
        n = len(buf)
        pos = self._pos
        walk = self._walk_tuple
        out: List[Tuple[bytes, int]] = []
        room = self.chunk_size - self.header_size - 2
        try:
            while True:
                end = walk(buf, pos, n)
                if end < 0:
                    self._see_trailer(pos, n)
                    if self._part_rows or not self._emitted:
                        self._flush(out)
                    break
                size = end - pos
                if self._part_rows and self._part_size + size > room:
                    self._flush(out)
                self._parts.append(buf[pos:end])
                self._part_size += size
                self._part_rows += 1
                self.rows += 1
                pos = end
        except _Incomplete:
            pass
        finally:
            if not self.done:
                self._pos = pos
                self.tuple_end = self._base + pos
        return out


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------

def _encode_raw(value) -> bytes:
    if isinstance(value, bytes):
        b = value
    elif isinstance(value, (bytearray, memoryview)):
        b = bytes(value)
    else:
        raise TypeError(EE_RAW_TYPE.format(tname=type(value).__name__))
    if len(b) > MAX_FIELD_SIZE:
        raise EncodeError(EE_RAW_LIMIT.format(n=len(b)))
    return b


class Encoder:
    """Rows in, COPY BINARY bytes out.

    ``types``: one spec per column (see Decoder), or None for raw mode (each value
    ``bytes``/``bytearray``/``memoryview`` or None; the column count is
    ``len(names)`` when names are given, else taken from the first row).  ``header()`` and ``trailer()`` give the stream's ends;
    ``encode(rows)`` gives the tuples of many rows as one block.  ``encode`` is
    atomic: when a value is bad it raises (EncodeError for a bad value, TypeError
    for a wrong Python type; the message names field and row, ``exc.row`` and
    ``exc.column`` are set, 1-based) and returns nothing of that call; the row
    counter stays where it was, and the encoder remains usable.
    """

    def __init__(self, types: Optional[Sequence[Any]] = None, *,
                 names: Optional[Sequence[str]] = None):
        self._infos = None
        self._ncols: Optional[int] = None
        if types is not None:
            self._infos = [_resolve(t) for t in types]
            self._ncols = len(self._infos)
            self._encoders = [ti.encode for ti in self._infos]
        else:
            self._encoders = None
        if names is not None and self._ncols is not None and len(names) != self._ncols:
            raise ValueError(f"{len(names)} names for {self._ncols} columns")
        if names is not None and self._ncols is None:
            self._ncols = len(names)
        self._names = list(names) if names is not None else None
        self.rows = 0

    @property
    def types(self):
        return None if self._infos is None else list(self._infos)

    def header(self) -> bytes:
        return HEADER

    def trailer(self) -> bytes:
        return TRAILER

    def _error(self, cls, col: Optional[int], row: int, text: str):
        if col is None:
            msg = EP_ROW.format(row=row) + ": " + text
        elif self._names is not None and col <= len(self._names):
            msg = EP_FIELD_NAMED.format(col=col, name=self._names[col - 1], row=row) + ": " + text
        else:
            msg = EP_FIELD.format(col=col, row=row) + ": " + text
        exc = cls(msg)
        exc.row = row
        exc.column = col
        return exc

    def encode(self, rows: Iterable[Sequence[Any]]) -> bytes:
        """Encode many rows into one block of tuples (no header, no trailer)."""
        parts: List[bytes] = []
        add = parts.append
        pack_i = _pack_i
        null = _NULL_WORD
        encoders = self._encoders
        ncols = self._ncols
        count_word = _h.pack(ncols) if ncols is not None else None
        row_no = self.rows
        for row in rows:
            row_no += 1
            try:
                nvals = len(row)
            except TypeError:
                raise self._error(TypeError, None, row_no, EE_NOT_SEQUENCE.format(
                    tname=type(row).__name__)) from None
            if ncols is None:
                if nvals > 32767:
                    raise self._error(EncodeError, None, row_no,
                                      EE_ROW_LENGTH.format(n=nvals, ncols=32767))
                # Raw encoder without types: the first row fixes the column count.
                ncols = nvals
                count_word = _h.pack(ncols)
            if nvals != ncols:
                raise self._error(EncodeError, None, row_no,
                                  EE_ROW_LENGTH.format(n=nvals, ncols=ncols))
            add(count_word)
            if encoders is None:
                col = 0
                for v in row:
                    col += 1
                    if v is None:
                        add(null)
                        continue
                    try:
                        b = _encode_raw(v)
                    except TypeError as exc:
                        raise self._error(TypeError, col, row_no, str(exc)) from None
                    except ValueError as exc:
                        raise self._error(EncodeError, col, row_no, str(exc)) from None
                    add(pack_i(len(b)))
                    add(b)
            else:
                col = 0
                for enc, v in zip(encoders, row):
                    col += 1
                    if v is None:
                        add(null)
                        continue
                    try:
                        b = enc(v)
                    except TypeError as exc:
                        raise self._error(TypeError, col, row_no, str(exc)) from None
                    except (ValueError, OverflowError, struct.error) as exc:
                        raise self._error(EncodeError, col, row_no, str(exc)) from None
                    if len(b) > MAX_FIELD_SIZE:
                        raise self._error(EncodeError, col, row_no,
                                          EE_RAW_LIMIT.format(n=len(b)))
                    add(pack_i(len(b)))
                    add(b)
        self.rows = row_no
        self._ncols = ncols
        return b"".join(parts)


def write_stream(fileobj: BinaryIO, rows: Iterable[Sequence[Any]],
                 types: Optional[Sequence[Any]] = None, *,
                 names: Optional[Sequence[str]] = None,
                 block_size: int = DEFAULT_BLOCK_SIZE) -> int:
    """Write a whole COPY BINARY stream (header, rows, trailer) to ``fileobj``.

    Rows are encoded in batches and written in blocks of about ``block_size`` bytes.
    Returns the number of bytes written.  On an encoding error the stream written so
    far is left unfinished (no trailer), so it cannot be mistaken for a whole one.
    """
    return push_rows(Encoder(types, names=names), fileobj, rows, block_size)


def push_rows(enc: Any, fileobj: BinaryIO, rows: Iterable[Sequence[Any]],
              block_size: int) -> int:
    """The batching write loop over any Encoder (shared with the C core's
    ``write_stream``); returns the bytes written."""
    write = fileobj.write
    total = 0
    head = enc.header()
    pending = [head]
    plen = len(head)
    batch: List[Sequence[Any]] = []
    # Rows per encode() call: grows until a batch gives about block_size bytes.
    batch_rows = 256
    for row in rows:
        batch.append(row)
        if len(batch) >= batch_rows:
            block = enc.encode(batch)
            batch = []
            pending.append(block)
            plen += len(block)
            if len(block) < block_size // 2 and batch_rows < 1 << 20:
                batch_rows *= 2
            if plen >= block_size:
                data = b"".join(pending)
                write(data)
                total += len(data)
                pending = []
                plen = 0
    if batch:
        block = enc.encode(batch)
        pending.append(block)
    pending.append(enc.trailer())
    data = b"".join(pending)
    write(data)
    total += len(data)
    return total
