# Included by _fastcopy.pyx (Cython ``include``: one module, cut into files so that
# none is too long to read); the names it uses come from there and from the files
# included before it.
#
# Buffers, Scanner, Chunker: framing without decoding values.

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
