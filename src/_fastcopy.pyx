# cython: language_level=3
"""Cython core of the COPY BINARY codec, built as ``dumpcodec._fastcopy``.

Same API and behaviour as the pure-Python twin ``dumpcodec.copy.pure`` (the oracle of
the differential tests): same rows, same bytes, same CopyFormatError class, message,
offset, row and column, raised by the same call, for every input.

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
# The framing walker: a resumable state machine that consumes bytes in pieces of
# any size, keeps at most 19 bytes of its own (a partial length word or header),
# never reads past the piece it is given, and never allocates.  It is the single
# source of truth for framing errors; the decoders' fast loops hand over to it
# whenever a tuple is incomplete or suspicious.

cdef enum:
    ST_HEAD = 0     # collecting the 19-byte fixed header
    ST_EXT = 1      # skipping the header extension (left bytes)
    ST_COUNT = 2    # collecting the int16 field count (or trailer)
    ST_OIDLEN = 3   # collecting the OID field's length word
    ST_OIDDATA = 4  # skipping the OID field's bytes
    ST_LEN = 5      # collecting a field's length word
    ST_DATA = 6     # skipping a field's bytes
    ST_DONE = 7     # trailer seen
    ST_ERROR = 8    # an error was raised; the stream is unusable

cdef enum:
    E_NONE = 0
    E_SIGNATURE = 1
    E_FLAGS = 2
    E_EXTLEN = 3
    E_COUNT_NEG = 4
    E_COUNT_MISMATCH = 5
    E_LEN_NEG = 6
    E_LEN_HUGE = 7
    E_AFTER_TRAILER = 8
    E_OIDLEN = 9
    E_EXTLIMIT = 10


cdef struct Walker:
    int state
    int have                 # bytes collected in scratch
    unsigned char scratch[HEADLEN]
    int64_t left             # bytes still to skip (extension, field data)
    int32_t nfields          # field count of the current tuple
    int32_t fidx             # index of the current field (0-based)
    int32_t ncols            # expected field count, -1 when unknown
    uint32_t flags
    int oids
    int64_t offset           # absolute offset of the next byte to consume
    int64_t rows             # complete tuples
    int64_t tuple_start      # absolute offset of the current tuple
    int64_t item_start       # absolute offset of the current count/length word
    int64_t header_size
    int64_t tuple_end        # absolute offset just past the last complete tuple
    int64_t ext_len
    int err
    int64_t err_offset
    int64_t err_value
    int32_t err_field        # 1-based field number, 0 for the OID field


cdef void walker_init(Walker *w, int32_t ncols) noexcept nogil:
    memset_walker(w)
    w.state = ST_HEAD
    w.ncols = ncols


cdef void memset_walker(Walker *w) noexcept nogil:
    w.state = ST_HEAD
    w.have = 0
    w.left = 0
    w.nfields = 0
    w.fidx = 0
    w.ncols = -1
    w.flags = 0
    w.oids = 0
    w.offset = 0
    w.rows = 0
    w.tuple_start = 0
    w.item_start = 0
    w.header_size = 0
    w.tuple_end = 0
    w.ext_len = 0
    w.err = E_NONE
    w.err_offset = 0
    w.err_value = 0
    w.err_field = 0


cdef inline int walker_fail(Walker *w, int code, int64_t offset, int64_t value,
                            int32_t field) noexcept nogil:
    w.err = code
    w.err_offset = offset
    w.err_value = value
    w.err_field = field
    w.state = ST_ERROR
    return -1


cdef inline int walker_next_field(Walker *w) noexcept nogil:
    """Advance past a finished field; return 1 when the tuple is complete."""
    w.fidx += 1
    if w.fidx >= w.nfields:
        w.rows += 1
        w.tuple_end = w.offset
        w.state = ST_COUNT
        w.have = 0
        return 1
    w.state = ST_LEN
    w.have = 0
    return 0


cdef Py_ssize_t walk(Walker *w, const unsigned char *p, Py_ssize_t n,
                     int stop_at_unit) noexcept nogil:
    """Consume up to n bytes; return the count consumed, or -1 on error.

    With stop_at_unit, return right after the header, a tuple or the trailer
    completes (so the caller can act on a whole unit).
    """
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t take
    cdef int32_t cnt, ln
    cdef uint32_t flags
    cdef int64_t ext
    while pos < n:
        st = w.state
        if st == ST_COUNT:
            if w.have == 0:
                w.item_start = w.offset
                w.tuple_start = w.offset
            # fast path: the whole word is here
            if w.have == 0 and n - pos >= 2:
                cnt = <int16_t>dc_u16(p + pos)
                pos += 2
                w.offset += 2
            else:
                w.scratch[w.have] = p[pos]
                w.have += 1
                pos += 1
                w.offset += 1
                if w.have < 2:
                    continue
                cnt = <int16_t>dc_u16(w.scratch)
                w.have = 0
            if cnt == -1:
                w.state = ST_DONE
                if stop_at_unit:
                    return pos
                continue
            if cnt < 0:
                return walker_fail(w, E_COUNT_NEG, w.item_start, cnt, 0)
            if w.ncols < 0:
                w.ncols = cnt
            elif cnt != w.ncols:
                return walker_fail(w, E_COUNT_MISMATCH, w.item_start, cnt, 0)
            w.nfields = cnt
            w.fidx = 0
            if w.oids:
                w.state = ST_OIDLEN
            elif cnt == 0:
                w.fidx = -1
                if walker_next_field(w) and stop_at_unit:
                    return pos
            else:
                w.state = ST_LEN
        elif st == ST_LEN or st == ST_OIDLEN:
            if w.have == 0:
                w.item_start = w.offset
            if w.have == 0 and n - pos >= 4:
                ln = <int32_t>dc_u32(p + pos)
                pos += 4
                w.offset += 4
            else:
                w.scratch[w.have] = p[pos]
                w.have += 1
                pos += 1
                w.offset += 1
                if w.have < 4:
                    continue
                ln = <int32_t>dc_u32(w.scratch)
                w.have = 0
            if st == ST_OIDLEN and ln != 4:
                return walker_fail(w, E_OIDLEN, w.item_start, ln, 0)
            if ln < -1:
                return walker_fail(w, E_LEN_NEG, w.item_start, ln, w.fidx + 1)
            if ln > C_MAX_FIELD:
                return walker_fail(w, E_LEN_HUGE, w.item_start, ln, w.fidx + 1)
            if st == ST_OIDLEN:
                if ln > 0:
                    w.left = ln
                    w.state = ST_OIDDATA
                elif w.nfields == 0:
                    w.fidx = -1
                    if walker_next_field(w) and stop_at_unit:
                        return pos
                else:
                    w.state = ST_LEN
            elif ln > 0:
                w.left = ln
                w.state = ST_DATA
            else:
                if walker_next_field(w) and stop_at_unit:
                    return pos
        elif st == ST_DATA or st == ST_OIDDATA:
            take = n - pos
            if take > w.left:
                take = <Py_ssize_t>w.left
            pos += take
            w.offset += take
            w.left -= take
            if w.left == 0:
                if st == ST_OIDDATA:
                    if w.nfields == 0:
                        w.fidx = -1
                        if walker_next_field(w) and stop_at_unit:
                            return pos
                    else:
                        w.state = ST_LEN
                else:
                    if walker_next_field(w) and stop_at_unit:
                        return pos
        elif st == ST_HEAD:
            take = HEADLEN - w.have
            if take > n - pos:
                take = n - pos
            memcpy(w.scratch + w.have, p + pos, take)
            w.have += take
            pos += take
            w.offset += take
            if w.have >= SIGLEN and memcmp(w.scratch, C_SIGNATURE, SIGLEN) != 0:
                return walker_fail(w, E_SIGNATURE, 0, 0, 0)
            if w.have < HEADLEN:
                continue
            flags = dc_u32(w.scratch + 11)
            if flags & 0xFFFE0000u:
                return walker_fail(w, E_FLAGS, 11, flags, 0)
            w.flags = flags
            w.oids = (flags & 0x10000u) != 0
            ext = <int32_t>dc_u32(w.scratch + 15)
            if ext < 0:
                return walker_fail(w, E_EXTLEN, 15, ext, 0)
            if ext > C_MAX_FIELD:
                return walker_fail(w, E_EXTLIMIT, 15, ext, 0)
            w.ext_len = ext
            w.have = 0
            if ext > 0:
                w.left = ext
                w.state = ST_EXT
            else:
                w.header_size = HEADLEN
                w.tuple_end = HEADLEN
                w.state = ST_COUNT
                if stop_at_unit:
                    return pos
        elif st == ST_EXT:
            take = n - pos
            if take > w.left:
                take = <Py_ssize_t>w.left
            pos += take
            w.offset += take
            w.left -= take
            if w.left == 0:
                w.header_size = w.offset
                w.tuple_end = w.offset
                w.state = ST_COUNT
                if stop_at_unit:
                    return pos
        elif st == ST_DONE:
            return walker_fail(w, E_AFTER_TRAILER, w.offset, n - pos, 0)
        else:
            return -1
    return pos


cdef inline Py_ssize_t scan_tuples(Walker *w, const unsigned char *p, Py_ssize_t n) noexcept nogil:
    """Fast walk over complete tuples in p[0:n] (walker at a tuple boundary).

    Returns the bytes consumed; stops at the first tuple that is incomplete or
    suspicious (the general walker then takes over and reports any error), or at
    the trailer.
    """
    cdef Py_ssize_t pos
    cdef int64_t rows = 0
    cdef int32_t ncols = w.ncols
    if w.oids:
        return 0
    pos = dc_scan_tuples(p, n, &ncols, &rows)
    w.ncols = ncols
    if pos > 0:
        w.rows += rows
        w.offset += pos
        w.tuple_end = w.offset
    return pos


# ---------------------------------------------------------------------------
# Error messages: the twin's texts, imported (never copied) so they cannot drift.

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


cdef object _header_error(int64_t off, str text):
    return CopyFormatError(_pc.P_HEADER.format(off=off) + ": " + text, off, None, None)


cdef object _row_error(int64_t row, int64_t off, str text):
    return CopyFormatError(_pc.P_ROW.format(row=row, off=off) + ": " + text, off, row, None)


cdef object _field_error(int32_t col, int64_t row, int64_t off, str text, object names):
    return _pc._field_error(col, row, off, text, names)


cdef object walker_error(Walker *w, object names):
    """The CopyFormatError for the walker's recorded error."""
    cdef int code = w.err
    cdef int64_t row = w.rows + 1
    if code == E_SIGNATURE:
        return _header_error(0, _pc.E_SIGNATURE)
    if code == E_FLAGS:
        return _header_error(11, _pc.E_CRITICAL_FLAGS.format(flags=w.err_value & 0xFFFE0000))
    if code == E_EXTLEN:
        return _header_error(15, _pc.E_EXT_NEGATIVE.format(n=w.err_value))
    if code == E_EXTLIMIT:
        return _header_error(15, _pc.E_EXT_LIMIT.format(n=w.err_value))
    if code == E_COUNT_NEG:
        return _row_error(row, w.err_offset, _pc.E_FIELD_COUNT.format(n=w.err_value))
    if code == E_COUNT_MISMATCH:
        return _row_error(row, w.err_offset, _pc.E_FIELD_COUNT_MISMATCH.format(
            n=w.err_value, ncols=w.ncols))
    if code == E_LEN_NEG:
        return _field_error(w.err_field, row, w.err_offset,
                            _pc.E_LENGTH_NEGATIVE.format(n=w.err_value), names)
    if code == E_LEN_HUGE:
        return _field_error(w.err_field, row, w.err_offset,
                            _pc.E_LENGTH_LIMIT.format(n=w.err_value), names)
    if code == E_OIDLEN:
        return _field_error(0, row, w.err_offset, _pc.E_OID_LENGTH.format(n=w.err_value), names)
    if code == E_AFTER_TRAILER:
        return CopyFormatError(_pc.P_STREAM.format(off=w.err_offset) + ": " + _pc.E_AFTER_TRAILER,
                               w.err_offset, None, None)
    return SystemError(f"dumpcodec._fastcopy: unexpected walker state (error code {code})")


cdef inline int prefix_bad(Walker *w) noexcept nogil:
    """True when the header bytes seen so far (fewer than 11) cannot start a stream."""
    return w.state == ST_HEAD and w.have < SIGLEN and memcmp(w.scratch, C_SIGNATURE, w.have) != 0


cdef object walker_close_error(Walker *w, object names):
    """The CopyFormatError for a stream that ended before its trailer, or None."""
    cdef int64_t row = w.rows + 1
    cdef int64_t end = w.offset
    st = w.state
    if st == ST_DONE:
        return None
    if st == ST_HEAD or st == ST_EXT:
        if prefix_bad(w):
            return _header_error(0, _pc.E_SIGNATURE)
        return _header_error(0, _pc.E_END_HEADER.format(end=end))
    if st == ST_COUNT and w.have == 0:
        return _row_error(row, end, _pc.E_END_TRAILER.format(end=end))
    if st == ST_COUNT:
        return _row_error(row, w.tuple_start, _pc.E_END_COUNT.format(end=end))
    if st == ST_LEN or st == ST_OIDLEN:
        off = w.offset - w.have
    else:
        off = w.item_start
    field = 0 if (st == ST_OIDLEN or st == ST_OIDDATA) else w.fidx + 1
    return _field_error(field, row, off, _pc.E_END_FIELD.format(end=end), names)


# ---------------------------------------------------------------------------
# Buffers

cdef int get_view(object data, Py_buffer *view) except -1:
    """A contiguous view of data; anything else goes through bytes(), as in the twin."""
    try:
        PyObject_GetBuffer(data, view, PyBUF_SIMPLE)
    except (BufferError, TypeError):
        PyObject_GetBuffer(bytes(data), view, PyBUF_SIMPLE)
    return 0


cdef class _Buf:
    """A growable C byte buffer (the decoder's tail, the encoder's output)."""
    cdef unsigned char *data
    cdef Py_ssize_t len
    cdef Py_ssize_t cap

    def __cinit__(self):
        self.data = NULL
        self.len = 0
        self.cap = 0

    def __dealloc__(self):
        if self.data != NULL:
            free(self.data)
            self.data = NULL

    cdef int grow(self, Py_ssize_t extra) except -1:
        """Make room for extra more bytes (amortised doubling)."""
        cdef Py_ssize_t need = self.len + extra
        cdef Py_ssize_t newcap
        cdef unsigned char *nd
        if need <= self.cap:
            return 0
        newcap = self.cap * 2 if self.cap else 65536
        while newcap < need:
            newcap *= 2
        nd = <unsigned char *>realloc(self.data, newcap)
        if nd == NULL:
            raise MemoryError()
        self.data = nd
        self.cap = newcap
        return 0

    cdef inline int reserve(self, Py_ssize_t extra) except -1:
        if self.len + extra > self.cap:
            return self.grow(extra)
        return 0

    cdef int append(self, const unsigned char *p, Py_ssize_t n) except -1:
        if n <= 0:
            return 0
        self.reserve(n)
        memcpy(self.data + self.len, p, n)
        self.len += n
        return 0

    cdef void release(self) noexcept:
        """Give back a large allocation once it is empty (a huge tuple passed)."""
        if self.cap > (16 << 20):
            free(self.data)
            self.data = NULL
            self.cap = 0
        self.len = 0


# ---------------------------------------------------------------------------
# Scanner

cdef Py_ssize_t _scan_feed(Walker *w, const unsigned char *p, Py_ssize_t n) noexcept nogil:
    """Walk all of p[0:n]; -1 on error."""
    cdef Py_ssize_t pos = 0, k
    while pos < n:
        if w.state == ST_COUNT and w.have == 0:
            k = scan_tuples(w, p + pos, n - pos)
            pos += k
            if pos >= n:
                break
        k = walk(w, p + pos, n - pos, 1)
        if k < 0:
            return -1
        pos += k
    return pos


cdef class _FramingBase:
    """Walker, sticky error and the attributes common to all stream consumers."""
    cdef Walker w
    cdef object _names
    cdef object _error
    cdef int _fed

    cdef int _init_walker(self, object ncols) except -1:
        cdef int32_t nc = -1
        if ncols is not None:
            if not 0 <= ncols <= 32767:
                raise ValueError(f"ncols must be between 0 and 32767, not {ncols}")
            nc = ncols
        walker_init(&self.w, nc)
        self._error = None
        self._fed = 0
        return 0

    cdef object _fail(self, object exc):
        self._error = exc
        return exc

    cdef int _after_piece(self) except -1:
        """The twin checks a partial signature only on the first piece it parses."""
        if not self._fed:
            self._fed = 1
            if prefix_bad(&self.w):
                raise self._fail(_header_error(0, _pc.E_SIGNATURE))
        return 0

    cdef int _walk_error(self) except -1:
        raise self._fail(walker_error(&self.w, self._names))

    def close(self):
        """Declare the end of the stream; raise CopyFormatError if it was truncated."""
        if self._error is not None:
            raise self._error
        err = walker_close_error(&self.w, self._names)
        if err is not None:
            raise self._fail(err)

    @property
    def rows(self) -> int:
        return self.w.rows

    @property
    def offset(self) -> int:
        if self.w.state == ST_DONE:
            return self.w.tuple_end + 2
        return self.w.tuple_end

    @property
    def done(self) -> bool:
        return self.w.state == ST_DONE

    @property
    def flags(self):
        return self.w.flags if self.w.header_size else None

    @property
    def header_size(self):
        return self.w.header_size if self.w.header_size else None

    @property
    def tuple_end(self) -> int:
        return self.w.tuple_end


cdef class Scanner(_FramingBase):
    """Walk the framing without decoding values: count rows, validate structure.

    ``feed(data) -> int`` returns the rows completed by this piece; the walk runs
    with the GIL released.  See ``dumpcodec.copy.pure.Scanner``.
    """

    cdef int _busy

    def __init__(self, ncols=None):
        self._init_walker(ncols)
        self._names = None
        self._busy = 0

    def feed(self, data) -> int:
        cdef Py_buffer view
        cdef int64_t before = self.w.rows
        cdef Py_ssize_t r
        if self._error is not None:
            raise self._error
        if self._busy:
            # the walk below runs without the GIL: one thread at a time per Scanner
            raise RuntimeError("Scanner.feed() called while another thread is in it")
        get_view(data, &view)
        self._busy = 1
        try:
            if view.len == 0:
                return 0
            with nogil:
                r = _scan_feed(&self.w, <const unsigned char *>view.buf, view.len)
        finally:
            self._busy = 0
            PyBuffer_Release(&view)
        if r < 0:
            self._walk_error()
        self._after_piece()
        return self.w.rows - before


def scan(buf) -> tuple:
    """Validate a whole in-memory COPY BINARY stream; return ``(rows, size)``."""
    cdef Scanner s = Scanner()
    s.feed(buf)
    s.close()
    return (s.w.rows, len(buf))


# ---------------------------------------------------------------------------
# Chunker

cdef Py_ssize_t scan_tuples_limit(Walker *w, const unsigned char *p, Py_ssize_t n,
                                  Py_ssize_t limit, int64_t *nrows) noexcept nogil:
    """Like scan_tuples, but take only whole tuples whose total stays <= limit."""
    cdef Py_ssize_t pos = 0, q
    cdef int32_t cnt, i, ln
    cdef int32_t ncols = w.ncols
    cdef int64_t rows = 0
    if w.oids:
        return 0
    while n - pos >= 2:
        cnt = <int16_t>dc_u16(p + pos)
        if cnt < 0:
            break
        if ncols < 0:
            ncols = cnt
            w.ncols = cnt
        elif cnt != ncols:
            break
        q = pos + 2
        i = 0
        while i < cnt:
            if n - q < 4:
                break
            ln = <int32_t>dc_u32(p + q)
            q += 4
            if ln < 0:
                if ln != -1:
                    break
            elif ln <= C_MAX_FIELD and ln <= n - q:
                q += ln
            else:
                break
            i += 1
        if i < cnt or q > limit:
            break
        pos = q
        rows += 1
    if pos > 0:
        w.rows += rows
        w.offset += pos
        w.tuple_end = w.offset
    nrows[0] = rows
    return pos


cdef class Chunker(_FramingBase):
    """Cut one COPY BINARY stream into complete streams of at most ``chunk_size`` bytes.

    See ``dumpcodec.copy.pure.Chunker``: each piece is the original header + whole
    tuples + trailer; a tuple larger than a piece goes alone in its piece.
    """
    cdef readonly Py_ssize_t chunk_size
    cdef _Buf _hdr
    cdef _Buf _part
    cdef _Buf _cur
    cdef int64_t _part_rows
    cdef int64_t _emitted

    def __init__(self, chunk_size=DEFAULT_CHUNK_SIZE, ncols=None):
        if chunk_size < HEADLEN + 2:
            raise ValueError(f"chunk_size must be at least {HEADLEN + 2}, not {chunk_size}")
        self._init_walker(ncols)
        self._names = None
        self.chunk_size = chunk_size
        self._hdr = _Buf()
        self._part = _Buf()
        self._cur = _Buf()
        self._part_rows = 0
        self._emitted = 0

    cdef int _flush(self, list out) except -1:
        cdef Py_ssize_t total = self._hdr.len + self._part.len + 2
        cdef bytes piece = PyBytes_FromStringAndSize(NULL, total)
        cdef unsigned char *d = <unsigned char *>PyBytes_AS_STRING(piece)
        memcpy(d, self._hdr.data, self._hdr.len)
        if self._part.len:
            memcpy(d + self._hdr.len, self._part.data, self._part.len)
        d[total - 2] = 0xFF
        d[total - 1] = 0xFF
        out.append((piece, self._part_rows))
        self._emitted += 1
        self._part.len = 0
        self._part_rows = 0
        return 0

    cdef int _add_tuple(self, const unsigned char *p, Py_ssize_t size, list out) except -1:
        cdef Py_ssize_t room = self.chunk_size - self.w.header_size - 2
        if self._part_rows and self._part.len + size > room:
            self._flush(out)
        self._part.append(p, size)
        self._part_rows += 1
        return 0

    cdef int _on_trailer(self, list out) except -1:
        if self._part_rows or not self._emitted:
            self._flush(out)
        return 0

    def feed(self, data) -> list:
        cdef Py_buffer view
        cdef list out = []
        if self._error is not None:
            raise self._error
        get_view(data, &view)
        try:
            if view.len:
                self._feed(<const unsigned char *>view.buf, view.len, out)
        finally:
            PyBuffer_Release(&view)
        return out

    cdef int _feed(self, const unsigned char *p, Py_ssize_t n, list out) except -1:
        cdef Walker *w = &self.w
        cdef Py_ssize_t pos = 0, k, room, limit
        cdef int64_t before, nrows = 0
        while pos < n:
            st = w.state
            if st == ST_HEAD or st == ST_EXT:
                k = walk(w, p + pos, n - pos, 1)
                if k < 0:
                    self._walk_error()
                self._hdr.append(p + pos, k)
                pos += k
            elif st == ST_COUNT and w.have == 0 and self._cur.len == 0:
                room = self.chunk_size - w.header_size - 2
                limit = room - self._part.len
                if limit > 0:
                    k = scan_tuples_limit(w, p + pos, n - pos, limit, &nrows)
                    if k:
                        self._part.append(p + pos, k)
                        self._part_rows += nrows
                        pos += k
                        if pos >= n:
                            break
                before = w.rows
                k = walk(w, p + pos, n - pos, 1)
                if k < 0:
                    self._walk_error()
                if w.state == ST_DONE:
                    self._on_trailer(out)
                elif w.rows > before:
                    self._add_tuple(p + pos, k, out)
                else:
                    self._cur.append(p + pos, k)
                pos += k
            elif st == ST_DONE or st == ST_ERROR:
                walk(w, p + pos, n - pos, 1)
                self._walk_error()
            else:
                before = w.rows
                k = walk(w, p + pos, n - pos, 1)
                if k < 0:
                    self._walk_error()
                self._cur.append(p + pos, k)
                pos += k
                if w.state == ST_DONE:
                    self._cur.len = 0
                    self._on_trailer(out)
                elif w.rows > before:
                    self._add_tuple(self._cur.data, self._cur.len, out)
                    self._cur.release()
        self._after_piece()
        return 0

    def close(self) -> list:
        _FramingBase.close(self)
        return []


# ---------------------------------------------------------------------------
# Per-column codecs.  A column is either one of the hot types handled in C, or
# delegated to the twin's per-type Python function (dumpcodec.copy.types) once per
# value.  The C paths handle only the plain, valid case; anything unusual (a wrong length, a
# value outside Python's range, infinities, NaN, non-default array bounds...) is
# handed to the twin's function, which gives the stand-in object or the error
# message, so both implementations cannot disagree on the rare cases.

from cpython.datetime cimport (import_datetime, date_new, datetime_new,
                               PyDateTime_CheckExact, PyDate_CheckExact,
                               PyDateTime_GET_YEAR, PyDateTime_GET_MONTH, PyDateTime_GET_DAY,
                               PyDateTime_DATE_GET_HOUR, PyDateTime_DATE_GET_MINUTE,
                               PyDateTime_DATE_GET_SECOND, PyDateTime_DATE_GET_MICROSECOND,
                               datetime_tzinfo)
from cpython.long cimport PyLong_FromLong, PyLong_FromLongLong, PyLong_FromUnsignedLong
from cpython.float cimport PyFloat_FromDouble
from cpython.unicode cimport PyUnicode_DecodeUTF8
import decimal as _decimal_mod
import uuid as _uuid_mod

import_datetime()

cdef extern from *:
    """
    /* PyUnicode_DecodeUTF8 returning a new reference or NULL with the error set */
    static inline PyObject *dc_decode_utf8(const char *s, Py_ssize_t n) {
        return PyUnicode_DecodeUTF8(s, n, NULL);
    }
    """
    PyObject *dc_decode_utf8(const char *s, Py_ssize_t n)

cdef extern from "Python.h":
    object PyList_New(Py_ssize_t n)
    void PyList_SET_ITEM(object l, Py_ssize_t i, object o)
    int PyErr_ExceptionMatches(PyObject *exc)
    void PyErr_Clear()
    object _PyLong_FromByteArray(const unsigned char *b, size_t n, int little_endian, int is_signed)
    const char *PyUnicode_AsUTF8AndSize(object u, Py_ssize_t *size) except NULL
    bint PyLong_CheckExact(object o)
    bint PyFloat_CheckExact(object o)
    bint PyUnicode_CheckExact(object o)
    bint PyBytes_CheckExact(object o)
    long long PyLong_AsLongLongAndOverflow(object o, int *overflow) except? -1
    double PyFloat_AS_DOUBLE(object o)
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void *PyUnicode_DATA(object o)
    PyObject *PyObject_CallOneArg(PyObject *f, PyObject *a) except NULL
    ctypedef struct PyTypeObject:
        int (*tp_descr_set)(PyObject *, PyObject *, PyObject *) except -1
        PyObject *(*tp_alloc)(PyTypeObject *, Py_ssize_t) except NULL
    PyTypeObject *Py_TYPE(PyObject *o)

cdef object _Decimal = _decimal_mod.Decimal
cdef object _UUID = _uuid_mod.UUID
cdef object _uuid_int_slot = _uuid_mod.UUID.__dict__["int"]
cdef object _uuid_safe_slot = _uuid_mod.UUID.__dict__["is_safe"]
cdef object _uuid_unknown = _uuid_mod.SafeUUID.unknown

# days since 2000-01-01 of 0001-01-01 and 9999-12-31 (Python's date range)
DEF MIN_DAYS = -730119
DEF MAX_DAYS = 2921939
DEF USECS_PER_DAY = 86400000000

cdef enum:
    # Our own numbering; setup_col maps types.core's CODEC_* ids onto these by name.
    K_PY = 0        # the twin's Python decode/encode
    K_BOOL = 1
    K_INT2 = 2
    K_INT4 = 3
    K_INT8 = 4
    K_OID = 5
    K_FLOAT4 = 6
    K_FLOAT8 = 7
    K_TEXT = 8      # text, varchar, bpchar, name, json, xml (UTF-8)
    K_BYTEA = 9
    K_DATE = 10
    K_TS = 11
    K_TSTZ = 12
    K_NUMERIC = 13
    K_UUID = 14
    K_JSONB = 15
    K_ARRAY = 16


cdef struct _ColCodec:
    int kind
    int32_t size            # fixed wire size, -1 if none (checked before the twin's decode)
    PyObject *name          # the type's name, for messages
    int elem_kind           # for arrays
    uint32_t elem_oid       # for arrays
    int enc_text            # text-like columns encodable in C (no typmod, no limits)
    PyObject *pydec         # borrowed: the owner keeps its TypeInfo list alive
    PyObject *pyenc
    PyObject *elem_pydec
    PyObject *pyenc_elem
    PyObject *tz            # tzinfo for timestamptz (the twin's UTC object)


cdef inline int days_to_ymd(int64_t days, int *y, int *m, int *d) noexcept nogil:
    """Proleptic Gregorian civil date for days since 2000-01-01 (Hinnant's algorithm)."""
    cdef int64_t z = days + 730425
    cdef int64_t era = (z if z >= 0 else z - 146096) // 146097
    cdef int64_t doe = z - era * 146097
    cdef int64_t yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef int64_t yy = yoe + era * 400
    cdef int64_t doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef int64_t mp = (5 * doy + 2) // 153
    d[0] = <int>(doy - (153 * mp + 2) // 5 + 1)
    m[0] = <int>(mp + 3 if mp < 10 else mp - 9)
    y[0] = <int>(yy + 1 if m[0] <= 2 else yy)
    return 0


cdef inline int64_t ymd_to_days(int64_t y, int64_t m, int64_t d) noexcept nogil:
    """Days since 2000-01-01 of a proleptic Gregorian date (inverse of the above)."""
    if m <= 2:
        y -= 1
    cdef int64_t era = (y if y >= 0 else y - 399) // 400
    cdef int64_t yoe = y - era * 400
    cdef int64_t mp = m - 3 if m > 2 else m + 9
    cdef int64_t doy = (153 * mp + 2) // 5 + d - 1
    cdef int64_t doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 730425


cdef int raise_current() except -1:
    """Propagate the exception that is set (a C call returned NULL)."""
    raise_pending()
    return -1


cdef extern from *:
    """
    static int dc_raise_pending(void) { return PyErr_Occurred() ? -1 : 0; }
    """
    int raise_pending "dc_raise_pending"() except -1


cdef inline object _py_decode(PyObject *f, const unsigned char *p, int32_t ln):
    return (<object>f)(PyBytes_FromStringAndSize(<const char *>p, ln))


cdef object _py_decode_col(_ColCodec *c, const unsigned char *p, int32_t ln):
    """The twin's path for one value: size check, then the type's decode function."""
    if c.size >= 0 and ln != c.size:
        raise ValueError(_ER_SIZE.format(n=ln, size=c.size))
    return (<object>c.pydec)(PyBytes_FromStringAndSize(<const char *>p, ln))


cdef object make_uuid(const unsigned char *p):
    """A uuid.UUID without running UUID.__init__: allocate, then fill its two slots.

    The object is untracked by the collector: its slots hold an int and an enum
    member, so it cannot be part of a reference cycle (and millions of live UUIDs
    would otherwise make every collection walk them).
    """
    cdef object iv = _PyLong_FromByteArray(p, 16, 0, 0)
    cdef PyObject *u = (<PyTypeObject *>_UUID).tp_alloc(<PyTypeObject *>_UUID, 0)
    cdef object res = <object>u
    Py_DECREF(u)   # res holds the reference tp_alloc gave
    Py_TYPE(<PyObject *>_uuid_int_slot).tp_descr_set(<PyObject *>_uuid_int_slot, u,
                                                     <PyObject *>iv)
    Py_TYPE(<PyObject *>_uuid_safe_slot).tp_descr_set(<PyObject *>_uuid_safe_slot, u,
                                                      <PyObject *>_uuid_unknown)
    if PyObject_GC_IsTracked(u):
        PyObject_GC_UnTrack(u)
    return res


cdef object decode_numeric(_ColCodec *c, const unsigned char *p, int32_t ln):
    """numeric -> Decimal with exactly dscale fractional digits, via a C-built string."""
    cdef int ndigits, weight, sign, dscale, i, j, k, g, nint, nfrac, pos, total
    cdef char buf[256]
    cdef char *s
    cdef int dig
    cdef object r
    if ln < 8:
        return _py_decode_col(c, p, ln)
    ndigits = dc_u16(p)
    weight = <int16_t>dc_u16(p + 2)
    sign = dc_u16(p + 4)
    dscale = dc_u16(p + 6)
    if ln != 8 + 2 * ndigits or (sign != 0 and sign != 0x4000) or dscale > 0x3FFF \
            or ndigits == 0:
        return _py_decode_col(c, p, ln)
    # integer digits: groups 0..weight; fraction: dscale digits
    nint = (weight + 1) * 4 if weight >= 0 else 0
    total = 1 + (nint if nint > 0 else 1) + 1 + dscale
    if total > <int>sizeof(buf) - 8:
        return _py_decode_col(c, p, ln)
    for i in range(ndigits):
        if dc_u16(p + 8 + 2 * i) >= 10000:
            return _py_decode_col(c, p, ln)
    # digits beyond dscale that are not zero: let the twin decide what that means
    s = buf
    pos = 0
    if sign == 0x4000:
        s[pos] = 45  # '-'
        pos += 1
    if weight < 0:
        s[pos] = 48
        pos += 1
    else:
        for g in range(weight + 1):
            dig = dc_u16(p + 8 + 2 * g) if g < ndigits else 0
            s[pos] = 48 + dig // 1000
            s[pos + 1] = 48 + dig // 100 % 10
            s[pos + 2] = 48 + dig // 10 % 10
            s[pos + 3] = 48 + dig % 10
            pos += 4
    # fractional digits: group index weight+1 ..., each 4 digits
    if dscale > 0:
        s[pos] = 46  # '.'
        pos += 1
        k = 0
        g = weight + 1
        while k < dscale:
            if g >= 0 and g < ndigits:
                dig = dc_u16(p + 8 + 2 * g)
            else:
                dig = 0
            j = 0
            while j < 4 and k < dscale:
                if j == 0:
                    s[pos] = 48 + dig // 1000
                elif j == 1:
                    s[pos] = 48 + dig // 100 % 10
                elif j == 2:
                    s[pos] = 48 + dig // 10 % 10
                else:
                    s[pos] = 48 + dig % 10
                pos += 1
                j += 1
                k += 1
            g += 1
    # non-zero digits past dscale would be cut off here: hand those to the twin
    g = weight + 1 + (dscale + 3) // 4
    if g < 0:
        g = 0
    while g < ndigits:
        if dc_u16(p + 8 + 2 * g) != 0:
            return _py_decode_col(c, p, ln)
        g += 1
    if dscale % 4 and weight + 1 + dscale // 4 < ndigits and weight + 1 + dscale // 4 >= 0:
        dig = dc_u16(p + 8 + 2 * (weight + 1 + dscale // 4))
        j = dscale % 4
        if (j == 1 and dig % 1000) or (j == 2 and dig % 100) or (j == 3 and dig % 10):
            return _py_decode_col(c, p, ln)
    if sign == 0x4000:
        # "-0.00" would keep a sign the twin drops: let it decide
        for i in range(1, pos):
            if s[i] > 48 and s[i] <= 57:
                break
        else:
            return _py_decode_col(c, p, ln)
    r = PyUnicode_New(pos, 127)
    memcpy(PyUnicode_DATA(r), s, pos)
    return _Decimal(r)


cdef object decode_value(_ColCodec *c, const unsigned char *p, int32_t ln):
    cdef int kind = c.kind
    cdef int64_t v64, days, us
    cdef uint32_t u32
    cdef uint64_t u64
    cdef float f4
    cdef double f8
    cdef int y, m, d, secs
    cdef PyObject *r
    cdef object res
    if kind == K_INT4:
        if ln == 4:
            return PyLong_FromLong(<int32_t>dc_u32(p))
    elif kind == K_INT8:
        if ln == 8:
            return PyLong_FromLongLong(<int64_t>dc_u64(p))
    elif kind == K_TEXT:
        r = dc_decode_utf8(<const char *>p, ln)
        if r != NULL:
            res = <object>r
            Py_DECREF(r)
            return res
        if not PyErr_ExceptionMatches(<PyObject *>UnicodeDecodeError):
            raise_current()
        PyErr_Clear()
    elif kind == K_FLOAT8:
        if ln == 8:
            u64 = dc_u64(p)
            memcpy(&f8, &u64, 8)
            return PyFloat_FromDouble(f8)
    elif kind == K_BOOL:
        if ln == 1:
            return True if p[0] else False
    elif kind == K_TSTZ or kind == K_TS:
        if ln == 8:
            v64 = <int64_t>dc_u64(p)
            days = v64 // USECS_PER_DAY if v64 >= 0 else -((-(v64 + 1)) // USECS_PER_DAY) - 1
            if MIN_DAYS <= days <= MAX_DAYS:
                us = v64 - days * USECS_PER_DAY
                days_to_ymd(days, &y, &m, &d)
                secs = <int>(us // 1000000)
                return datetime_new(y, m, d, secs // 3600, secs // 60 % 60, secs % 60,
                                    <int>(us % 1000000),
                                    <object>c.tz if kind == K_TSTZ else None)
    elif kind == K_DATE:
        if ln == 4:
            days = <int32_t>dc_u32(p)
            if MIN_DAYS <= days <= MAX_DAYS:
                days_to_ymd(days, &y, &m, &d)
                return date_new(y, m, d)
    elif kind == K_NUMERIC:
        return decode_numeric(c, p, ln)
    elif kind == K_UUID:
        if ln == 16:
            return make_uuid(p)
    elif kind == K_BYTEA:
        return PyBytes_FromStringAndSize(<const char *>p, ln)
    elif kind == K_INT2:
        if ln == 2:
            return PyLong_FromLong(<int16_t>dc_u16(p))
    elif kind == K_OID:
        if ln == 4:
            return PyLong_FromUnsignedLong(dc_u32(p))
    elif kind == K_FLOAT4:
        if ln == 4:
            u32 = dc_u32(p)
            memcpy(&f4, &u32, 4)
            return PyFloat_FromDouble(<double>f4)
    elif kind == K_JSONB:
        if ln >= 1 and p[0] == 1:
            r = dc_decode_utf8(<const char *>p + 1, ln - 1)
            if r != NULL:
                res = <object>r
                Py_DECREF(r)
                return res
            if not PyErr_ExceptionMatches(<PyObject *>UnicodeDecodeError):
                raise_current()
            PyErr_Clear()
    elif kind == K_ARRAY:
        return decode_array(c, p, ln)
    return _py_decode_col(c, p, ln)


cdef object decode_array(_ColCodec *c, const unsigned char *p, int32_t ln):
    """1-D..6-D arrays of hot element types, lower bounds 1; else the twin."""
    cdef int32_t ndim, hasnull, i, n
    cdef int32_t dims[6]
    cdef int64_t total = 1
    cdef uint32_t eoid
    cdef Py_ssize_t pos
    cdef _ColCodec ec
    cdef object flat, item
    cdef int32_t el
    cdef int ek
    cdef int nulls = 0
    if ln < 12:
        return _py_decode_col(c, p, ln)
    ndim = <int32_t>dc_u32(p)
    hasnull = <int32_t>dc_u32(p + 4)
    eoid = dc_u32(p + 8)
    if ndim < 1 or ndim > 6 or (hasnull != 0 and hasnull != 1) or eoid != c.elem_oid \
            or ln < 12 + 8 * ndim:
        return _py_decode_col(c, p, ln)
    for i in range(ndim):
        dims[i] = <int32_t>dc_u32(p + 12 + 8 * i)
        if dims[i] < 1 or <int32_t>dc_u32(p + 16 + 8 * i) != 1:
            return _py_decode_col(c, p, ln)
        total *= dims[i]
        if total > ln:
            return _py_decode_col(c, p, ln)
    ec.kind = c.elem_kind
    ec.size = -1
    ec.pydec = c.elem_pydec
    ec.tz = c.tz
    ec.elem_pydec = NULL
    ek = c.elem_kind
    pos = 12 + 8 * ndim
    if total * 4 > ln - pos:
        return _py_decode_col(c, p, ln)
    flat = PyList_New(<Py_ssize_t>total)
    try:
        for i in range(<int32_t>total):
            if ln - pos < 4:
                return _py_decode_col(c, p, ln)
            el = <int32_t>dc_u32(p + pos)
            pos += 4
            if el == -1:
                if not hasnull:
                    return _py_decode_col(c, p, ln)
                nulls = 1
                item = None
            elif el < 0 or el > ln - pos:
                return _py_decode_col(c, p, ln)
            elif ek == K_INT4 and el == 4:
                item = PyLong_FromLong(<int32_t>dc_u32(p + pos))
            elif ek == K_INT8 and el == 8:
                item = PyLong_FromLongLong(<int64_t>dc_u64(p + pos))
            else:
                item = decode_value(&ec, p + pos, el)
            Py_INCREF(item)
            PyList_SET_ITEM(flat, i, item)
            if el > 0:
                pos += el
    except (ValueError, _struct_error, OverflowError):
        # an element the twin refuses: its decoder gives the exact message
        return _py_decode_col(c, p, ln)
    if pos != ln or hasnull != nulls:
        # trailing bytes, or a has-nulls flag without NULLs (a stand-in keeps it)
        return _py_decode_col(c, p, ln)
    if ndim == 1:
        return flat
    return _nest(flat, dims, ndim)


cdef list _nest(list flat, int32_t *dims, int ndim):
    """Split a flat list into nested lists, innermost dimension last."""
    cdef int k
    cdef Py_ssize_t size, j, n
    cdef list cur = flat, nxt
    for k in range(ndim - 1, 0, -1):
        size = dims[k]
        n = len(cur) // size
        nxt = [None] * n
        for j in range(n):
            nxt[j] = cur[j * size:(j + 1) * size]
        cur = nxt
    return cur


from dumpcodec.copy.types import core as _tcore
from dumpcodec.copy.types.datetime import decode_timestamptz as _decode_timestamptz

cdef object _ER_SIZE = _tcore.ER_SIZE
cdef object _EV_VALUE = _tcore.EV_VALUE
cdef object _UTC = _decode_timestamptz(b"\x00" * 8).tzinfo

# types.core's codec ids -> our kinds (by name, so a renumbering there cannot break us)
cdef dict _KIND_BY_CODEC = {}
for _name, _kind in (("BOOL", K_BOOL), ("INT2", K_INT2), ("INT4", K_INT4), ("INT8", K_INT8),
                     ("OID", K_OID), ("FLOAT4", K_FLOAT4), ("FLOAT8", K_FLOAT8),
                     ("TEXT", K_TEXT), ("BYTEA", K_BYTEA), ("DATE", K_DATE),
                     ("TIMESTAMP", K_TS), ("TIMESTAMPTZ", K_TSTZ), ("NUMERIC", K_NUMERIC),
                     ("UUID", K_UUID), ("JSONB", K_JSONB), ("ARRAY", K_ARRAY)):
    if hasattr(_tcore, "CODEC_" + _name):
        _KIND_BY_CODEC[getattr(_tcore, "CODEC_" + _name)] = _kind


cdef int setup_col(_ColCodec *c, object ti) except -1:
    """Fill a column's codec from its TypeInfo (the owner keeps ti alive)."""
    c.kind = _KIND_BY_CODEC.get(ti.codec, K_PY)
    c.size = ti.size if ti.size is not None else -1
    c.name = <PyObject *>ti.name
    c.elem_kind = K_PY
    c.elem_oid = 0
    c.enc_text = 0
    c.pydec = <PyObject *>ti.decode
    c.pyenc = <PyObject *>ti.encode
    c.elem_pydec = NULL
    c.tz = <PyObject *>_UTC
    if c.kind == K_ARRAY:
        el = ti.element
        if el is None:
            c.kind = K_PY
        else:
            c.elem_kind = _KIND_BY_CODEC.get(el.codec, K_PY)
            if c.elem_kind == K_ARRAY:
                c.elem_kind = K_PY
            c.elem_oid = el.oid
            c.elem_pydec = <PyObject *>el.decode
            c.pyenc_elem = <PyObject *>el.encode
    return 0


# ---------------------------------------------------------------------------
# Hot-type encoders.  Each writes the length word and the value and returns 0, or
# returns 1 (having written nothing) when the value is not the plain case, so that
# the twin's Python encoder decides (it produces the bytes or the exact error).

cdef extern from "Python.h":
    bint PyList_CheckExact(object o)
    Py_ssize_t PyList_GET_SIZE(object o)
    PyObject *PyList_GET_ITEM(object o, Py_ssize_t i)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    object PyObject_Str(object o)

cdef extern from "math.h":
    bint isinf(double x) nogil

cdef object _uuid_int_get = _uuid_int_slot.__get__


cdef inline void put_len(_Buf buf, Py_ssize_t start, Py_ssize_t n) noexcept:
    dc_put32(buf.data + start, <uint32_t>n)


cdef int enc_numeric(_ColCodec *c, object v, _Buf buf) except -1:
    """Decimal -> numeric, as types.numeric.encode_numeric, from str(v) parsed in C."""
    cdef object s = PyObject_Str(v)
    cdef Py_ssize_t n, i, nd = 0, nfrac = 0, start, k
    cdef const char *t
    cdef char digs[1040]
    cdef uint16_t groups[270]
    cdef int neg = 0, seen_dot = 0, in_exp = 0, eneg = 0, allzero = 1
    cdef int64_t e = 0, exp, e4, shift, dscale, weight
    cdef int ngroups, lead, first, last, g, j, dig
    t = PyUnicode_AsUTF8AndSize(s, &n)
    i = 0
    if n > 0 and t[0] == 45:
        neg = 1
        i = 1
    if i >= n or not (48 <= t[i] <= 57):
        return 1  # NaN, Infinity, sNaN
    while i < n:
        ch = t[i]
        if 48 <= ch <= 57:
            if in_exp:
                e = e * 10 + (ch - 48)
                if e > 100000000:
                    return 1
            else:
                if nd >= 1000:
                    return 1
                digs[nd] = ch - 48
                if ch != 48:
                    allzero = 0
                nd += 1
                if seen_dot:
                    nfrac += 1
        elif ch == 46 and not seen_dot and not in_exp:
            seen_dot = 1
        elif (ch == 69 or ch == 101) and not in_exp:
            in_exp = 1
            if i + 1 < n and (t[i + 1] == 43 or t[i + 1] == 45):
                eneg = t[i + 1] == 45
                i += 1
        else:
            return 1
        i += 1
    exp = (-e if eneg else e) - nfrac
    dscale = -exp if exp < 0 else 0
    if dscale > 0x3FFF:
        return 1
    start = buf.len
    if allzero:
        buf.reserve(12)
        dc_put32(buf.data + start, 8)
        dc_put16(buf.data + start + 4, 0)
        dc_put16(buf.data + start + 6, 0)
        dc_put16(buf.data + start + 8, 0)
        dc_put16(buf.data + start + 10, <uint16_t>dscale)
        buf.len = start + 12
        return 0
    # value = digs * 10**exp; align exp down to a multiple of 4
    e4 = exp // 4 if exp >= 0 else -((-exp + 3) // 4)
    shift = exp - 4 * e4
    for k in range(shift):
        digs[nd] = 0
        nd += 1
    # skip leading zero digits; group q (0 = most significant) covers the digits
    # [nd - 4*ngroups + 4q, +4), those before lead (or before 0) being zeros
    lead = 0
    while lead < nd and digs[lead] == 0:
        lead += 1
    ngroups = <int>((nd - lead + 3) // 4)
    for g in range(ngroups):
        dig = 0
        for k in range(4):
            idx = nd - 4 * ngroups + 4 * g + k
            dig = dig * 10 + (digs[idx] if idx >= lead else 0)
        groups[g] = <uint16_t>dig
    # strip trailing zero groups as the server does
    last = ngroups
    while last > 0 and groups[last - 1] == 0:
        last -= 1
        e4 += 1
    weight = e4 + last - 1
    if last > 0xFFFF or weight < -0x8000 or weight > 0x7FFF:
        return 1
    buf.reserve(12 + 2 * last)
    dc_put32(buf.data + start, <uint32_t>(8 + 2 * last))
    dc_put16(buf.data + start + 4, <uint16_t>last)
    dc_put16(buf.data + start + 6, <uint16_t><int16_t>weight)
    dc_put16(buf.data + start + 8, 0x4000 if neg else 0)
    dc_put16(buf.data + start + 10, <uint16_t>dscale)
    for g in range(last):
        dc_put16(buf.data + start + 12 + 2 * g, groups[g])
    buf.len = start + 12 + 2 * last
    return 0


cdef int enc_array(_ColCodec *c, object v, _Buf buf) except -1:
    """A 1-D list (or []) of hot element values, lower bound 1; else the twin."""
    cdef Py_ssize_t start = buf.len, n, i
    cdef _ColCodec ec
    cdef int hasnull = 0, r
    cdef object e
    if not PyList_CheckExact(v):
        return 1
    n = PyList_GET_SIZE(v)
    if n == 0:
        buf.reserve(16)
        dc_put32(buf.data + start, 12)
        dc_put32(buf.data + start + 4, 0)
        dc_put32(buf.data + start + 8, 0)
        dc_put32(buf.data + start + 12, c.elem_oid)
        buf.len = start + 16
        return 0
    if PyList_CheckExact(<object>PyList_GET_ITEM(v, 0)) or c.elem_kind == K_PY \
            or c.elem_kind == K_ARRAY or n > 0x7FFFFFFF:
        return 1
    ec.kind = c.elem_kind
    ec.size = -1
    ec.tz = c.tz
    buf.reserve(24)
    buf.len = start + 24
    for i in range(n):
        e = <object>PyList_GET_ITEM(v, i)
        if e is None:
            hasnull = 1
            buf.reserve(4)
            dc_put32(buf.data + buf.len, 0xFFFFFFFFu)
            buf.len += 4
            continue
        r = encode_value(&ec, e, buf)
        if r:
            buf.len = start
            return 1
        if buf.len - start > C_MAX_FIELD:
            buf.len = start
            return 1
    dc_put32(buf.data + start, <uint32_t>(buf.len - start - 4))
    dc_put32(buf.data + start + 4, 1)
    dc_put32(buf.data + start + 8, <uint32_t>hasnull)
    dc_put32(buf.data + start + 12, c.elem_oid)
    dc_put32(buf.data + start + 16, <uint32_t>n)
    dc_put32(buf.data + start + 20, 1)
    return 0


cdef int encode_value(_ColCodec *c, object v, _Buf buf) except -1:
    """Write v (length word + bytes) for a hot type; return 1 to ask for the twin."""
    cdef int kind = c.kind
    cdef long long x
    cdef int overflow = 0
    cdef Py_ssize_t n
    cdef const char *t
    cdef double d
    cdef float f
    cdef uint64_t u64
    cdef uint32_t u32
    cdef int64_t days, us
    cdef unsigned char *o
    if kind == K_INT8 or kind == K_INT4 or kind == K_INT2 or kind == K_OID:
        if not PyLong_CheckExact(v):
            return 1
        x = PyLong_AsLongLongAndOverflow(v, &overflow)
        if overflow:
            return 1
        buf.reserve(12)
        o = buf.data + buf.len
        if kind == K_INT8:
            dc_put32(o, 8)
            dc_put64(o + 4, <uint64_t>x)
            buf.len += 12
        elif kind == K_INT4:
            if x < -2147483648 or x > 2147483647:
                return 1
            dc_put32(o, 4)
            dc_put32(o + 4, <uint32_t><int32_t>x)
            buf.len += 8
        elif kind == K_INT2:
            if x < -32768 or x > 32767:
                return 1
            dc_put32(o, 2)
            dc_put16(o + 4, <uint16_t><int16_t>x)
            buf.len += 6
        else:
            if x < 0 or x > 4294967295:
                return 1
            dc_put32(o, 4)
            dc_put32(o + 4, <uint32_t>x)
            buf.len += 8
        return 0
    if kind == K_TEXT or kind == K_JSONB:
        if not PyUnicode_CheckExact(v):
            return 1
        try:
            t = PyUnicode_AsUTF8AndSize(v, &n)
        except UnicodeEncodeError:
            return 1
        if n > C_MAX_FIELD - 1 or memchr(t, 0, n) != NULL:
            return 1
        if kind == K_JSONB:
            buf.reserve(5 + n)
            o = buf.data + buf.len
            dc_put32(o, <uint32_t>(n + 1))
            o[4] = 1
            memcpy(o + 5, t, n)
            buf.len += 5 + n
        else:
            buf.reserve(4 + n)
            o = buf.data + buf.len
            dc_put32(o, <uint32_t>n)
            memcpy(o + 4, t, n)
            buf.len += 4 + n
        return 0
    if kind == K_FLOAT8 or kind == K_FLOAT4:
        if not PyFloat_CheckExact(v):
            return 1
        d = PyFloat_AS_DOUBLE(v)
        buf.reserve(12)
        o = buf.data + buf.len
        if kind == K_FLOAT8:
            memcpy(&u64, &d, 8)
            dc_put32(o, 8)
            dc_put64(o + 4, u64)
            buf.len += 12
        else:
            f = <float>d
            if isinf(f) and not isinf(d):
                return 1
            memcpy(&u32, &f, 4)
            dc_put32(o, 4)
            dc_put32(o + 4, u32)
            buf.len += 8
        return 0
    if kind == K_BOOL:
        if v is True or v is False:
            buf.reserve(5)
            o = buf.data + buf.len
            dc_put32(o, 1)
            o[4] = 1 if v is True else 0
            buf.len += 5
            return 0
        return 1
    if kind == K_TSTZ or kind == K_TS:
        if not PyDateTime_CheckExact(v):
            return 1
        tz = datetime_tzinfo(v)
        if kind == K_TSTZ:
            if tz is not <object>c.tz:
                return 1
        elif tz is not None:
            return 1
        days = ymd_to_days(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v),
                           PyDateTime_GET_DAY(v))
        us = ((days * 86400 + PyDateTime_DATE_GET_HOUR(v) * 3600
               + PyDateTime_DATE_GET_MINUTE(v) * 60 + PyDateTime_DATE_GET_SECOND(v))
              * 1000000 + PyDateTime_DATE_GET_MICROSECOND(v))
        buf.reserve(12)
        o = buf.data + buf.len
        dc_put32(o, 8)
        dc_put64(o + 4, <uint64_t>us)
        buf.len += 12
        return 0
    if kind == K_DATE:
        if not PyDate_CheckExact(v):
            return 1
        days = ymd_to_days(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v),
                           PyDateTime_GET_DAY(v))
        buf.reserve(8)
        o = buf.data + buf.len
        dc_put32(o, 4)
        dc_put32(o + 4, <uint32_t><int32_t>days)
        buf.len += 8
        return 0
    if kind == K_BYTEA:
        if not PyBytes_CheckExact(v):
            return 1
        n = PyBytes_GET_SIZE(v)
        if n > C_MAX_FIELD:
            return 1
        buf.reserve(4 + n)
        o = buf.data + buf.len
        dc_put32(o, <uint32_t>n)
        memcpy(o + 4, PyBytes_AS_STRING(v), n)
        buf.len += 4 + n
        return 0
    if kind == K_NUMERIC:
        if type(v) is not _Decimal:
            return 1
        return enc_numeric(c, v, buf)
    if kind == K_UUID:
        if type(v) is not _UUID:
            return 1
        buf.reserve(20)
        o = buf.data + buf.len
        dc_long_to_16(_uuid_int_get(v), o + 4)
        dc_put32(o, 16)
        buf.len += 20
        return 0
    if kind == K_ARRAY:
        return enc_array(c, v, buf)
    return 1


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
