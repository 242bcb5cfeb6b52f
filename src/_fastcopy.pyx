# cython: language_level=3
"""Cython core of the COPY BINARY codec, built as ``dumpcodec._fastcopy``.

Same API and behaviour as the pure-Python twin ``dumpcodec.copy.pure`` (the oracle of
the differential tests): same rows, same bytes, same CopyFormatError class, message,
offset, row and column, raised by the same call, for every input.  The API is written
down in ``dumpcodec/_fastcopy.pyi``.

One module in several files (Cython ``include``, as psycopg_c does): this one holds
the C helpers, the module's Python-level names, the Decoder and the Encoder;
``_fastcopy_framing.pxi`` the framing walker and its errors, ``_fastcopy_scan.pxi``
the buffers, Scanner and Chunker, ``_fastcopy_decode.pxi`` and
``_fastcopy_encode.pxi`` the per-column codecs.

In C here:

- the framing: a resumable state machine (``walk``) that consumes pieces of any
  size, keeps at most 19 bytes of its own, checks every length word against the
  data and the 1 GiB limit before anything is allocated, and is the one place
  framing errors come from; fast loops over complete tuples (``dc_scan_tuples``,
  ``Decoder._run``) hand any incomplete or suspicious tuple over to it;
- the push Decoder (only the bytes of an incomplete tuple are kept between pieces,
  complete tuples are decoded straight from the caller's buffer), the Scanner (its
  walk runs without the GIL), the Chunker, ``scan``;
- the Encoder, writing rows into one growable C buffer (a failing call leaves
  nothing behind);
- the hot types both ways: bool, int2/4/8, oid, float4/8, the text family, jsonb,
  bytea, date, timestamp, timestamptz, numeric, uuid, and arrays of them.

From the twin's Python modules (imported, never copied): the message texts, the
constants, type resolution (``dumpcodec.copy.types.resolve``) and, once per value,
the per-type functions for every other type and for every unusual value of a hot
type (a wrong length, a value outside Python's range, infinities, NaN, array bounds
other than 1, a has-nulls flag without NULLs, a wrong Python type or an out-of-range
value to encode...).  The C paths only ever handle the plain case, so stand-ins and error
messages cannot drift apart between the two implementations.
"""
from libc.stdint cimport int16_t, int32_t, int64_t, uint16_t, uint32_t, uint64_t, uint8_t
from libc.string cimport memcpy, memcmp, memchr
from libc.stdlib cimport malloc, realloc, free
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.ref cimport Py_INCREF, PyObject

from dumpcodec.errors import CopyFormatError


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    static inline uint16_t dc_u16(const unsigned char *p) {
        return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
    }
    static inline uint32_t dc_u32(const unsigned char *p) {
        uint32_t v; memcpy(&v, p, 4); return __builtin_bswap32(v);
    }
    static inline uint64_t dc_u64(const unsigned char *p) {
        uint64_t v; memcpy(&v, p, 8); return __builtin_bswap64(v);
    }
    static inline void dc_put16(unsigned char *p, uint16_t x) {
        p[0] = (unsigned char)(x >> 8); p[1] = (unsigned char)x;
    }
    static inline void dc_put32(unsigned char *p, uint32_t x) {
        x = __builtin_bswap32(x); memcpy(p, &x, 4);
    }
    static inline void dc_put64(unsigned char *p, uint64_t x) {
        x = __builtin_bswap64(x); memcpy(p, &x, 8);
    }
    #define DC_MAX_FIELD 1073741824
    /* Walk complete tuples of p[0:n] (a tuple boundary at 0, no OIDs): stop at the
       first tuple that is incomplete, malformed or the trailer (left for the
       general walker).  Every length word is read only after checking that its 4
       bytes are there; a field's length is checked against the data left. */
    #define DC_SHAPE_MAX 16
    static Py_ssize_t dc_scan_tuples(const unsigned char *p, Py_ssize_t n,
                                     int32_t *ncols_io, int64_t *rows_out) {
        Py_ssize_t pos = 0, q, size = 0;
        int32_t ncols = *ncols_io, cnt, i, ln, k, nsh = 0;
        int64_t rows = 0;
        uint32_t offs[DC_SHAPE_MAX], words[DC_SHAPE_MAX], v, diff;
        while (n - pos >= 2) {
            /* Shape prediction: when this tuple's length words are those of the last
               one walked, it is just as valid and as long; the loads do not depend on
               each other, so the walk is no longer one chain of dependent reads. */
            if (size && n - pos >= size && (int16_t)dc_u16(p + pos) == ncols) {
                diff = 0;
                for (k = 0; k < nsh; k++) {
                    memcpy(&v, p + pos + offs[k], 4);
                    diff |= v ^ words[k];
                }
                if (!diff) {
                    pos += size;
                    rows++;
                    continue;
                }
            }
            cnt = (int16_t)dc_u16(p + pos);
            if (cnt < 0) break;
            if (ncols < 0) ncols = cnt;
            else if (cnt != ncols) break;
            q = pos + 2;
            for (i = 0; i < cnt; i++) {
                if (n - q < 4) goto out;
                if (i < DC_SHAPE_MAX) {
                    offs[i] = (uint32_t)(q - pos);
                    memcpy(&words[i], p + q, 4);
                }
                ln = (int32_t)dc_u32(p + q);
                q += 4;
                if ((uint32_t)ln <= (uint32_t)DC_MAX_FIELD) {
                    if ((Py_ssize_t)ln > n - q) goto out;
                    q += ln;
                } else if (ln != -1) {
                    goto out;
                }
            }
            nsh = cnt;
            size = (cnt <= DC_SHAPE_MAX) ? q - pos : 0;
            pos = q;
            rows++;
        }
    out:
        *ncols_io = ncols;
        *rows_out = rows;
        return pos;
    }

    /* a GC-tracked object (ints, str, floats, bytes, dates, Decimals are not GC types) */
    static inline int dc_is_tracked(PyObject *o) {
        return PyType_HasFeature(Py_TYPE(o), Py_TPFLAGS_HAVE_GC) && PyObject_GC_IsTracked(o);
    }
    /* 16 big-endian bytes of a non-negative int below 2**128 (a UUID's .int) */
    static int dc_long_to_16(PyObject *v, unsigned char *out) {
        if (!PyLong_Check(v)) { PyErr_SetString(PyExc_TypeError, "UUID.int is not an int"); return -1; }
    #if PY_VERSION_HEX >= 0x030D0000
        return _PyLong_AsByteArray((PyLongObject *)v, out, 16, 0, 0, 1);
    #else
        return _PyLong_AsByteArray((PyLongObject *)v, out, 16, 0, 0);
    #endif
    }
    """
    uint16_t dc_u16(const unsigned char *p) nogil
    uint32_t dc_u32(const unsigned char *p) nogil
    uint64_t dc_u64(const unsigned char *p) nogil
    void dc_put16(unsigned char *p, uint16_t x) nogil
    void dc_put32(unsigned char *p, uint32_t x) nogil
    void dc_put64(unsigned char *p, uint64_t x) nogil
    int dc_long_to_16(object v, unsigned char *out) except -1
    int dc_is_tracked(PyObject *o)
    Py_ssize_t dc_scan_tuples(const unsigned char *p, Py_ssize_t n, int32_t *ncols_io,
                              int64_t *rows_out) nogil


# ---------------------------------------------------------------------------
# Constants

# MAX_FIELD_SIZE and the DEFAULT_* sizes are the twin's (imported below).

cdef int64_t C_MAX_FIELD = 1 << 30
# C_SIGNATURE: the C-level copy; the Python-level SIGNATURE is the twin's bytes (below)
cdef const unsigned char *C_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
DEF SIGLEN = 11
DEF HEADLEN = 19


# ---------------------------------------------------------------------------
# The module's Python-level names and the twin's message texts, imported (never
# copied) so that they cannot drift.
from dumpcodec.copy import pure as _pc
import struct as _struct

__all__ = ["Decoder", "iter_rows", "Encoder", "write_stream", "Scanner", "Chunker", "scan",
           "DEFAULT_CHUNK_SIZE", "DEFAULT_READ_SIZE", "DEFAULT_BLOCK_SIZE", "MAX_FIELD_SIZE",
           "SIGNATURE", "HEADER", "TRAILER", "HEADER_SIZE", "FLAG_OIDS"]

SIGNATURE = _pc.SIGNATURE
HEADER = _pc.HEADER
TRAILER = _pc.TRAILER
HEADER_SIZE = _pc.HEADER_SIZE
FLAG_OIDS = _pc.FLAG_OIDS
MAX_FIELD_SIZE = _pc.MAX_FIELD_SIZE
DEFAULT_CHUNK_SIZE = _pc.DEFAULT_CHUNK_SIZE
DEFAULT_READ_SIZE = _pc.DEFAULT_READ_SIZE
DEFAULT_BLOCK_SIZE = _pc.DEFAULT_BLOCK_SIZE
if MAX_FIELD_SIZE != (1 << 30):
    raise ImportError("dumpcodec._fastcopy is built for a 1 GiB field limit; "
                      f"the twin says {MAX_FIELD_SIZE}")

cdef object _struct_error = _struct.error
cdef object _EncodeError = _pc.EncodeError
cdef bytes _TRAILER = b"\xff\xff"
cdef bytes _HEADER = SIGNATURE[:SIGLEN] + b"\x00" * 8


include "_fastcopy_framing.pxi"
include "_fastcopy_scan.pxi"
include "_fastcopy_decode.pxi"
include "_fastcopy_encode.pxi"


# ---------------------------------------------------------------------------
# Decoder

cdef extern from "Python.h":
    PyObject *PyTuple_New(Py_ssize_t n) except NULL
    void PyTuple_SET_ITEM(PyObject *t, Py_ssize_t i, PyObject *o)
    void Py_DECREF(PyObject *o)
    int PyObject_GC_IsTracked(PyObject *o)
    void PyObject_GC_UnTrack(void *o)
    int PyList_Append(object lst, PyObject *item) except -1


cdef class Decoder(_FramingBase):
    """Push decoder: ``feed(data)`` pieces split anywhere, get complete rows back.

    See ``dumpcodec.copy.pure.Decoder``.  The tail of an incomplete tuple is kept
    between pieces (only that tuple's bytes); complete tuples are decoded straight
    from the piece given.
    """
    cdef _Buf _tail
    cdef object _infos
    cdef list _decs         # per column: the twin's Python decoder (None in raw mode)
    cdef int _raw
    cdef Py_ssize_t _ncol
    cdef _ColCodec *_cols
    cdef int _busy

    def __cinit__(self):
        self._cols = NULL
        self._busy = 0

    def __dealloc__(self):
        if self._cols != NULL:
            free(self._cols)
            self._cols = NULL

    def __init__(self, types=None, *, names=None, raw=False):
        ncols = None
        self._infos = None
        if types is not None:
            types = list(types)
            ncols = len(types)
            if not raw:
                from dumpcodec.copy.types.registry import resolve
                self._infos = [resolve(t) for t in types]
        if names is not None and ncols is not None and len(names) != ncols:
            raise ValueError(f"{len(names)} names for {ncols} columns")
        self._init_walker(ncols)
        self._names = list(names) if names is not None else None
        self._tail = _Buf()
        if self._infos is not None:
            self._raw = 0
            self._decs = [ti.decode for ti in self._infos]
            self._ncol = len(self._infos)
            self._cols = <_ColCodec *>malloc(sizeof(_ColCodec) * (self._ncol + 1))
            if self._cols == NULL:
                raise MemoryError()
            for i, ti in enumerate(self._infos):
                setup_col(&self._cols[i], ti)
        else:
            self._raw = 1
            self._decs = None
            self._ncol = 0

    @property
    def types(self):
        """The resolved TypeInfo per column, or None in raw mode."""
        return None if self._infos is None else list(self._infos)

    def feed(self, data) -> list:
        """Add bytes; return the rows completed by them (possibly none)."""
        cdef Py_buffer view
        cdef list out = []
        if self._error is not None:
            raise self._error
        if self._busy:
            # a type's Python decode function feeding this same decoder: refuse,
            # the tail buffer may be in use
            raise RuntimeError("Decoder.feed() called again while it is running")
        get_view(data, &view)
        self._busy = 1
        try:
            if view.len:
                self._feed(<const unsigned char *>view.buf, view.len, out)
        except BaseException as exc:
            # Anything else a type's Python function raised leaves this piece
            # half consumed: the decoder cannot go on, say so on every later call.
            if self._error is None and not isinstance(exc, CopyFormatError):
                self._error = exc
            raise
        finally:
            self._busy = 0
            PyBuffer_Release(&view)
        return out

    cdef int _feed(self, const unsigned char *p, Py_ssize_t n, list out) except -1:
        cdef Walker *w = &self.w
        cdef Py_ssize_t pos = 0, k
        cdef int64_t before
        while pos < n:
            st = w.state
            if st == ST_COUNT and w.have == 0 and self._tail.len == 0:
                k = self._run(p + pos, n - pos, w.offset, out)
                w.offset += k
                pos += k
                if pos >= n or w.state == ST_DONE:
                    continue
                # The tuple at pos is incomplete or malformed: the walker decides.
                before = w.rows
                k = walk(w, p + pos, n - pos, 1)
                if k < 0:
                    self._walk_error()
                self._tail.append(p + pos, k)
                pos += k
                if w.state == ST_DONE:
                    self._tail.len = 0
                elif w.rows > before:
                    self._finish_tail(out)
            elif st == ST_HEAD or st == ST_EXT or st == ST_DONE or st == ST_ERROR:
                k = walk(w, p + pos, n - pos, 1)
                if k < 0:
                    self._walk_error()
                pos += k
            else:
                before = w.rows
                k = walk(w, p + pos, n - pos, 1)
                if k < 0:
                    self._walk_error()
                self._tail.append(p + pos, k)
                pos += k
                if w.state == ST_DONE:
                    self._tail.len = 0
                elif w.rows > before:
                    self._finish_tail(out)
        self._after_piece()
        return 0

    cdef int _finish_tail(self, list out) except -1:
        """Decode the one complete tuple the walker just finished in the tail."""
        cdef Walker *w = &self.w
        cdef Py_ssize_t k
        w.rows -= 1
        k = self._run(self._tail.data, self._tail.len, w.offset - self._tail.len, out)
        if k != self._tail.len or w.rows == 0:
            raise SystemError("dumpcodec._fastcopy: tail tuple not decoded")
        self._tail.release()
        return 0

    cdef Py_ssize_t _run(self, const unsigned char *p, Py_ssize_t n, int64_t base,
                         list out) except -1:
        """Decode the complete tuples at p[0:n]; return the bytes consumed.

        Stops at a tuple that is incomplete or whose framing is wrong (the walker
        then reports it), and right after the trailer.  A value error is raised
        only once the whole tuple's framing is known to be good (as in the twin).
        """
        cdef Walker *w = &self.w
        cdef Py_ssize_t pos = 0, q = 0
        cdef int32_t cnt, i = 0, ln = 0
        cdef int32_t ncols = w.ncols
        cdef int oids = w.oids
        cdef int raw = self._raw
        cdef PyObject *row = NULL
        cdef PyObject *v
        cdef int ok, untrack, kind
        cdef object val
        cdef _ColCodec *cols = self._cols
        try:
            while n - pos >= 2:
                cnt = <int16_t>dc_u16(p + pos)
                if cnt < 0:
                    if cnt == -1:
                        w.state = ST_DONE
                        w.tuple_end = base + pos
                        pos += 2
                    break
                if ncols < 0:
                    ncols = cnt
                    w.ncols = cnt
                elif cnt != ncols:
                    break
                q = pos + 2
                if oids:
                    if n - q < 8 or <int32_t>dc_u32(p + q) != 4:
                        break
                    q += 8
                row = PyTuple_New(cnt)
                ok = 1
                untrack = 1
                i = 0
                while i < cnt:
                    if n - q < 4:
                        ok = 0
                        break
                    ln = <int32_t>dc_u32(p + q)
                    if ln < 0:
                        if ln != -1:
                            ok = 0
                            break
                        Py_INCREF(None)
                        PyTuple_SET_ITEM(row, i, <PyObject *>None)
                        q += 4
                    elif ln > C_MAX_FIELD or ln > n - q - 4:
                        ok = 0
                        break
                    else:
                        if raw:
                            val = PyBytes_FromStringAndSize(<const char *>p + q + 4, ln)
                        else:
                            kind = cols[i].kind
                            # the commonest cases inline, the rest through the switch
                            if kind == K_INT8 and ln == 8:
                                val = PyLong_FromLongLong(<int64_t>dc_u64(p + q + 4))
                            elif kind == K_INT4 and ln == 4:
                                val = PyLong_FromLong(<int32_t>dc_u32(p + q + 4))
                            else:
                                val = decode_value(&cols[i], p + q + 4, ln)
                        v = <PyObject *>val
                        Py_INCREF(val)
                        PyTuple_SET_ITEM(row, i, v)
                        if untrack and dc_is_tracked(v):
                            untrack = 0
                        q += 4 + ln
                    i += 1
                if not ok:
                    Py_DECREF(row)
                    row = NULL
                    break
                if untrack:
                    PyObject_GC_UnTrack(row)
                PyList_Append(out, row)
                Py_DECREF(row)
                row = NULL
                w.rows += 1
                pos = q
                w.tuple_end = base + pos
        except BaseException as exc:
            if row != NULL:
                Py_DECREF(row)
                row = NULL
            if not isinstance(exc, (ValueError, _struct_error, OverflowError)):
                raise
            # A value of field i+1 does not decode.  As in the twin, the whole
            # tuple's framing is checked first: a framing fault (or the end of
            # the data) inside it takes precedence, via the walker.
            verr = _field_error(i + 1, w.rows + 1, base + q,
                                _EV_VALUE.format(name=<object>cols[i].name, reason=exc),
                                self._names)
            if rest_of_tuple_ok(p, n, q + 4 + ln, cnt - i - 1):
                raise self._fail(verr)
        return pos


cdef int rest_of_tuple_ok(const unsigned char *p, Py_ssize_t n, Py_ssize_t q,
                          int32_t left) noexcept:
    """True when `left` more well-formed fields follow at q, all within p[0:n]."""
    cdef int32_t ln
    while left > 0:
        if n - q < 4:
            return 0
        ln = <int32_t>dc_u32(p + q)
        q += 4
        if ln < 0:
            if ln != -1:
                return 0
        elif ln > C_MAX_FIELD or ln > n - q:
            return 0
        else:
            q += ln
        left -= 1
    return 1


def iter_rows(fileobj, types=None, *, names=None, raw=False, read_size=DEFAULT_READ_SIZE):
    """Pull form: yield the rows of the COPY BINARY stream read from ``fileobj``
    (the twin's pull loop over this module's Decoder)."""
    return _pc.pull_rows(Decoder(types, names=names, raw=raw), fileobj, read_size)


# ---------------------------------------------------------------------------
# Encoder

cdef extern from "Python.h":
    PyObject **PySequence_Fast_ITEMS(object o)
    Py_ssize_t PySequence_Fast_GET_SIZE(object o)


cdef class Encoder:
    """Rows in, COPY BINARY bytes out (see ``dumpcodec.copy.pure.Encoder``).

    Rows are written into a growable C buffer; a call that fails leaves nothing
    behind (the buffer is reset to where the call began) and the encoder usable.
    """
    cdef _Buf _buf
    cdef object _infos
    cdef object _names
    cdef list _encs
    cdef int64_t _rows
    cdef int32_t _ncols
    cdef _ColCodec *_cols
    cdef int _busy

    def __cinit__(self):
        self._cols = NULL
        self._busy = 0

    def __dealloc__(self):
        if self._cols != NULL:
            free(self._cols)
            self._cols = NULL

    def __init__(self, types=None, *, names=None):
        self._infos = None
        self._ncols = -1
        self._encs = None
        if types is not None:
            from dumpcodec.copy.types.registry import resolve
            self._infos = [resolve(t) for t in types]
            if len(self._infos) > 32767:
                raise ValueError(f"ncols must be between 0 and 32767, not {len(self._infos)}")
            self._ncols = len(self._infos)
            self._encs = [ti.encode for ti in self._infos]
            self._cols = <_ColCodec *>malloc(sizeof(_ColCodec) * (self._ncols + 1))
            if self._cols == NULL:
                raise MemoryError()
            for i, ti in enumerate(self._infos):
                setup_col(&self._cols[i], ti)
        if names is not None and self._infos is not None and len(names) != self._ncols:
            raise ValueError(f"{len(names)} names for {self._ncols} columns")
        if names is not None and self._infos is None:
            self._ncols = len(names)
        self._names = list(names) if names is not None else None
        self._rows = 0
        self._buf = _Buf()

    @property
    def types(self):
        return None if self._infos is None else list(self._infos)

    @property
    def rows(self) -> int:
        return self._rows

    def header(self) -> bytes:
        return _HEADER

    def trailer(self) -> bytes:
        return _TRAILER

    cdef object _error(self, cls, object col, int64_t row, str text):
        if col is None:
            msg = _pc.EP_ROW.format(row=row) + ": " + text
        elif self._names is not None and col <= len(self._names):
            msg = _pc.EP_FIELD_NAMED.format(col=col, name=self._names[col - 1], row=row) + ": " + text
        else:
            msg = _pc.EP_FIELD.format(col=col, row=row) + ": " + text
        exc = cls(msg)
        exc.row = row
        exc.column = col
        return exc

    def encode(self, rows) -> bytes:
        """Encode many rows into one block of tuples (no header, no trailer)."""
        cdef _Buf buf = self._buf
        if self._busy:
            raise RuntimeError("Encoder.encode() called again while it is running")
        self._busy = 1
        buf.len = 0
        try:
            self._encode(rows)
            return PyBytes_FromStringAndSize(<const char *>buf.data, buf.len)
        finally:
            self._busy = 0
            buf.len = 0
            if buf.cap > (64 << 20):
                buf.release()

    cdef int _encode(self, rows) except -1:
        cdef _Buf buf = self._buf
        cdef int64_t row_no = self._rows
        cdef int32_t ncols = self._ncols
        cdef Py_ssize_t nvals, i
        cdef PyObject **items
        cdef object seq, v
        cdef int raw = self._infos is None
        for row in rows:
            row_no += 1
            if type(row) is tuple or type(row) is list:
                seq = row
                nvals = PySequence_Fast_GET_SIZE(seq)
            else:
                try:
                    nvals = len(row)
                except TypeError:
                    raise self._error(TypeError, None, row_no, _pc.EE_NOT_SEQUENCE.format(
                        tname=type(row).__name__)) from None
                seq = list(row)
                if PySequence_Fast_GET_SIZE(seq) > nvals:
                    del seq[nvals:]
            if ncols < 0:
                if nvals > 32767:
                    raise self._error(_EncodeError, None, row_no,
                                      _pc.EE_ROW_LENGTH.format(n=nvals, ncols=32767))
                ncols = <int32_t>nvals
            if nvals != ncols:
                raise self._error(_EncodeError, None, row_no,
                                  _pc.EE_ROW_LENGTH.format(n=nvals, ncols=ncols))
            items = PySequence_Fast_ITEMS(seq)
            nvals = PySequence_Fast_GET_SIZE(seq)
            if nvals > ncols:
                nvals = ncols
            buf.reserve(2)
            dc_put16(buf.data + buf.len, <uint16_t>ncols)
            buf.len += 2
            for i in range(nvals):
                v = <object>items[i]
                if v is None:
                    buf.reserve(4)
                    dc_put32(buf.data + buf.len, 0xFFFFFFFFu)
                    buf.len += 4
                elif raw:
                    self._encode_raw(v, i + 1, row_no)
                elif encode_value(&self._cols[i], v, buf):
                    # not the plain case: the twin's encoder gives bytes or the error
                    self._encode_py(&self._cols[i], v, i + 1, row_no)
        self._rows = row_no
        self._ncols = ncols
        return 0

    cdef int _encode_raw(self, object v, int32_t col, int64_t row_no) except -1:
        cdef Py_buffer view
        cdef _Buf buf = self._buf
        if not (isinstance(v, bytes) or isinstance(v, bytearray) or isinstance(v, memoryview)):
            raise self._error(TypeError, col, row_no, _pc.EE_RAW_TYPE.format(tname=type(v).__name__))
        if isinstance(v, memoryview) and not v.c_contiguous:
            v = bytes(v)
        PyObject_GetBuffer(v, &view, PyBUF_SIMPLE)
        try:
            if view.len > C_MAX_FIELD:
                raise self._error(_EncodeError, col, row_no, _pc.EE_RAW_LIMIT.format(n=view.len))
            buf.reserve(4 + view.len)
            dc_put32(buf.data + buf.len, <uint32_t>view.len)
            memcpy(buf.data + buf.len + 4, view.buf, view.len)
            buf.len += 4 + view.len
        finally:
            PyBuffer_Release(&view)
        return 0

    cdef int _encode_py(self, _ColCodec *c, object v, int32_t col, int64_t row_no) except -1:
        try:
            b = (<object>c.pyenc)(v)
        except TypeError as exc:
            raise self._error(TypeError, col, row_no, str(exc)) from None
        except (ValueError, OverflowError, _struct_error) as exc:
            raise self._error(_EncodeError, col, row_no, str(exc)) from None
        if len(b) > C_MAX_FIELD:
            raise self._error(_EncodeError, col, row_no, _pc.EE_RAW_LIMIT.format(n=len(b)))
        self._put_field(b)
        return 0

    cdef int _put_field(self, object b) except -1:
        cdef Py_buffer view
        cdef _Buf buf = self._buf
        PyObject_GetBuffer(b, &view, PyBUF_SIMPLE)
        try:
            buf.reserve(4 + view.len)
            dc_put32(buf.data + buf.len, <uint32_t>view.len)
            memcpy(buf.data + buf.len + 4, view.buf, view.len)
            buf.len += 4 + view.len
        finally:
            PyBuffer_Release(&view)
        return 0


def write_stream(fileobj, rows, types=None, *, names=None, block_size=DEFAULT_BLOCK_SIZE) -> int:
    """Write a whole COPY BINARY stream (header, rows, trailer) to ``fileobj``.

    The twin's batching loop over this module's Encoder: rows are encoded in growing
    batches and written in blocks of about ``block_size`` bytes; returns the number
    of bytes written.
    """
    return _pc.push_rows(Encoder(types, names=names), fileobj, rows, block_size)
