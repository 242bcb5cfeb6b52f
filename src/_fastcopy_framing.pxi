# Included by _fastcopy.pyx (Cython ``include``: one module, cut into files so that
# none is too long to read); the names it uses come from there and from the files
# included before it.
#
# The framing walker and its errors.

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
# Errors of the walker, with the twin's messages

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
