# cython: language_level=3
"""Move COPY data between a psycopg connection and Python in large blocks.

psycopg's ``Copy.read()`` returns one row per Python call, which caps a dump at about
2 M rows/s while the server streams 9.5 M.  This module drives the *same* libpq that
psycopg uses (through function pointers that ``dumpcodec.pump`` looks up at run time, so
nothing is linked at build time and the libpq bundled by ``psycopg[binary]`` works as well
as the system one) and loops over ``PQgetlineAsync``/``PQgetCopyData`` and
``PQputCopyData`` with the GIL released, handing Python one block of about a megabyte
at a time.

Only the loop lives here; finding libpq, error classes and the Python fallback are in
``dumpcodec/pump.py``.  Every function takes the ``PGconn*`` as an integer address
(``conn.pgconn.pgconn_ptr``); the caller holds the psycopg connection's lock.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy
from libc.stdint cimport uintptr_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from posix.unistd cimport usleep

cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents
    int poll(pollfd*, unsigned long, int)
    enum: POLLIN

ctypedef int (*f_getcopydata)(void*, char**, int) noexcept nogil
ctypedef int (*f_getlineasync)(void*, char*, int) noexcept nogil
ctypedef int (*f_socket)(const void*) noexcept nogil
ctypedef int (*f_sslinuse)(const void*) noexcept nogil
ctypedef int (*f_putcopydata)(void*, const char*, int) noexcept nogil
ctypedef int (*f_putcopyend)(void*, const char*) noexcept nogil
ctypedef void (*f_freemem)(void*) noexcept nogil
ctypedef void* (*f_getresult)(void*) noexcept nogil
ctypedef int (*f_resultstatus)(const void*) noexcept nogil
ctypedef void (*f_clear)(void*) noexcept nogil
ctypedef char* (*f_errormessage)(const void*) noexcept nogil
ctypedef char* (*f_resulterrormessage)(const void*) noexcept nogil
ctypedef char* (*f_resulterrorfield)(const void*, int) noexcept nogil
ctypedef int (*f_sendquery)(void*, const char*) noexcept nogil
ctypedef int (*f_setnonblocking)(void*, int) noexcept nogil
ctypedef int (*f_isnonblocking)(const void*) noexcept nogil
ctypedef char* (*f_cmdtuples)(void*) noexcept nogil
ctypedef void* (*f_getcancel)(void*) noexcept nogil
ctypedef int (*f_cancel)(void*, char*, int) noexcept nogil
ctypedef void (*f_freecancel)(void*) noexcept nogil

# ExecStatusType values (libpq-fe.h; stable since 7.4)
cdef enum:
    PGRES_COMMAND_OK = 1
    PGRES_COPY_OUT = 3
    PGRES_COPY_IN = 4
PG_DIAG_SQLSTATE = ord('C')
PG_DIAG_MESSAGE_PRIMARY = ord('M')

# Waiting for COPY data in bulk (see _Coalescer): bytes to let arrive per wake-up, well
# under a local socket's buffer (about 200 kB on Linux), and the longest nap.
cdef enum:
    WAKE_BYTES = 65536
    MAX_NAP_US = 1000
    MIN_NAP_US = 20


cdef inline double _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef struct _Coalescer:
    # A COPY's rows come in one socket write of about 8 kB each; a reader that is
    # faster than the server sleeps and wakes for every one of them (45,000 wake-ups
    # for 350 MB: a third of the pump's CPU, and as many wake-ups the server pays
    # for).  Once a stream is bulk (a block received), a reader that finds libpq's
    # buffer and the socket both empty naps long enough for about WAKE_BYTES to
    # arrive, at the rate measured between such moments.  It never naps while data
    # waits, and the nap stays far below the time the socket buffer takes to fill,
    # so the server is not held up.
    int fd            # the socket, or -1: no napping (TLS keeps data of its own)
    double since      # when the socket was last found empty (0: measure afresh)
    Py_ssize_t got    # bytes received since then
    double rate       # bytes per second, smoothed (0: not known yet)


cdef void _co_wait(_Coalescer* c) noexcept nogil:
    """Called when libpq holds no complete row, before waiting for the socket."""
    cdef pollfd pfd
    cdef double now, nap, r
    if c.fd < 0:
        return
    pfd.fd = c.fd
    pfd.events = POLLIN
    pfd.revents = 0
    if poll(&pfd, 1, 0) != 0:
        return                              # data (or an error) waits: read it
    now = _now()
    if c.since > 0 and now > c.since and c.got > 0:
        r = c.got / (now - c.since)
        c.rate = r if c.rate == 0 else 0.75 * c.rate + 0.25 * r
    c.since = now
    c.got = 0
    if c.rate > 0:
        nap = 1e6 * WAKE_BYTES / c.rate
        if nap >= MIN_NAP_US:
            usleep(<unsigned int>(nap if nap < MAX_NAP_US else MAX_NAP_US))

# the names dumpcodec.pump must resolve, in this order
FUNCTIONS = (
    "PQgetCopyData", "PQputCopyData", "PQputCopyEnd", "PQfreemem", "PQgetResult",
    "PQresultStatus", "PQclear", "PQerrorMessage", "PQresultErrorMessage",
    "PQresultErrorField", "PQsendQuery", "PQsetnonblocking", "PQisnonblocking",
    "PQcmdTuples", "PQgetCancel", "PQcancel", "PQfreeCancel", "PQgetlineAsync",
    "PQsocket", "PQsslInUse",
)


class PumpError(Exception):
    """libpq or the server reported an error: args are (message, sqlstate or None)."""


cdef class LibPQ:
    """The libpq entry points, from addresses looked up by the caller."""
    cdef f_getcopydata getcopydata
    cdef f_getlineasync getlineasync
    cdef f_socket socket
    cdef f_sslinuse sslinuse
    cdef f_putcopydata putcopydata
    cdef f_putcopyend putcopyend
    cdef f_freemem freemem
    cdef f_getresult getresult
    cdef f_resultstatus resultstatus
    cdef f_clear clear
    cdef f_errormessage errormessage
    cdef f_resulterrormessage resulterrormessage
    cdef f_resulterrorfield resulterrorfield
    cdef f_sendquery sendquery
    cdef f_setnonblocking setnonblocking
    cdef f_isnonblocking isnonblocking
    cdef f_cmdtuples cmdtuples
    cdef f_getcancel getcancel
    cdef f_cancel cancel
    cdef f_freecancel freecancel
    cdef readonly object description

    def __init__(self, addresses, description=""):
        """``addresses``: mapping of every name in FUNCTIONS to a non-zero address."""
        missing = [n for n in FUNCTIONS if not addresses.get(n)]
        if missing:
            raise ValueError(f"libpq functions not found: {', '.join(missing)}")
        self.getcopydata = <f_getcopydata><uintptr_t>addresses["PQgetCopyData"]
        self.putcopydata = <f_putcopydata><uintptr_t>addresses["PQputCopyData"]
        self.putcopyend = <f_putcopyend><uintptr_t>addresses["PQputCopyEnd"]
        self.freemem = <f_freemem><uintptr_t>addresses["PQfreemem"]
        self.getresult = <f_getresult><uintptr_t>addresses["PQgetResult"]
        self.resultstatus = <f_resultstatus><uintptr_t>addresses["PQresultStatus"]
        self.clear = <f_clear><uintptr_t>addresses["PQclear"]
        self.errormessage = <f_errormessage><uintptr_t>addresses["PQerrorMessage"]
        self.resulterrormessage = <f_resulterrormessage><uintptr_t>addresses["PQresultErrorMessage"]
        self.resulterrorfield = <f_resulterrorfield><uintptr_t>addresses["PQresultErrorField"]
        self.sendquery = <f_sendquery><uintptr_t>addresses["PQsendQuery"]
        self.setnonblocking = <f_setnonblocking><uintptr_t>addresses["PQsetnonblocking"]
        self.isnonblocking = <f_isnonblocking><uintptr_t>addresses["PQisnonblocking"]
        self.cmdtuples = <f_cmdtuples><uintptr_t>addresses["PQcmdTuples"]
        self.getcancel = <f_getcancel><uintptr_t>addresses["PQgetCancel"]
        self.cancel = <f_cancel><uintptr_t>addresses["PQcancel"]
        self.freecancel = <f_freecancel><uintptr_t>addresses["PQfreeCancel"]
        self.getlineasync = <f_getlineasync><uintptr_t>addresses["PQgetlineAsync"]
        self.socket = <f_socket><uintptr_t>addresses["PQsocket"]
        self.sslinuse = <f_sslinuse><uintptr_t>addresses["PQsslInUse"]
        self.description = description

    # -- helpers (GIL held) -------------------------------------------------------

    cdef object _conn_error(self, void* conn):
        cdef char* msg = self.errormessage(conn)
        text = msg.decode("utf-8", "replace").strip() if msg != NULL else "unknown libpq error"
        return PumpError(text or "unknown libpq error", None)

    cdef object _result_error(self, void* res, void* conn):
        cdef char* msg
        cdef char* state
        if res == NULL:
            return self._conn_error(conn)
        # the primary message alone: the full one repeats "ERROR:" and context lines
        msg = self.resulterrorfield(res, PG_DIAG_MESSAGE_PRIMARY)
        if msg == NULL:
            msg = self.resulterrormessage(res)
        state = self.resulterrorfield(res, PG_DIAG_SQLSTATE)
        text = msg.decode("utf-8", "replace").strip() if msg != NULL else ""
        sqlstate = state.decode("ascii", "replace") if state != NULL else None
        if not text:
            text = f"unexpected result status {self.resultstatus(res)}"
        return PumpError(text, sqlstate)

    cdef void _drain_results(self, void* conn) noexcept nogil:
        # A command is only finished once PQgetResult returns NULL; until then the
        # connection cannot take another query.
        cdef void* res
        while True:
            res = self.getresult(conn)
            if res == NULL:
                return
            self.clear(res)

    cdef object _finish(self, void* conn):
        """Collect the COPY's final result; return its row count or raise."""
        cdef void* res
        cdef int status
        cdef char* ntup
        with nogil:
            res = self.getresult(conn)
            status = self.resultstatus(res) if res != NULL else -1
        if status != PGRES_COMMAND_OK:
            err = self._result_error(res, conn)
            if res != NULL:
                self.clear(res)
            with nogil:
                self._drain_results(conn)
            raise err
        ntup = self.cmdtuples(res)
        rows = int(ntup.decode("ascii")) if ntup != NULL and ntup[0] != 0 else -1
        self.clear(res)
        with nogil:
            self._drain_results(conn)
        return rows

    cdef int _start(self, void* conn, bytes query, int expect) except -1:
        """Send ``query`` in blocking mode and wait for the COPY state ``expect``."""
        cdef const char* q = query
        cdef int ok
        cdef void* res
        cdef int status
        with nogil:
            ok = self.sendquery(conn, q)
        if not ok:
            raise self._conn_error(conn)
        with nogil:
            res = self.getresult(conn)
            status = self.resultstatus(res) if res != NULL else -1
        if status != expect:
            err = self._result_error(res, conn)
            if res != NULL:
                self.clear(res)
            with nogil:
                self._drain_results(conn)
            raise err
        self.clear(res)
        return 0

    cdef void _cancel(self, void* conn) noexcept nogil:
        cdef void* c = self.getcancel(conn)
        cdef char errbuf[256]
        if c != NULL:
            self.cancel(c, errbuf, 256)
            self.freecancel(c)

    # -- COPY TO STDOUT -----------------------------------------------------------

    def copy_out(self, Py_ssize_t conn_ptr, bytes query, write, Py_ssize_t block_size=1 << 20):
        """Run ``query`` (a ``COPY ... TO STDOUT``) and call ``write(bytes)`` per block.

        Blocks hold whole CopyData messages (rows, for COPY BINARY) and are at least
        ``block_size`` bytes except the last.  Returns ``(rows, nbytes)``; rows is the
        server's count from the command tag.  An exception raised by ``write`` cancels
        the COPY, drains the connection back to idle and propagates; a server error
        raises PumpError(message, sqlstate).

        The rows libpq already holds are copied straight into the block buffer with
        ``PQgetlineAsync``; only when none is complete does ``PQgetCopyData`` wait for
        the socket (and hand over one row in a buffer of its own).  ``PQgetCopyData``
        alone costs a malloc, a free and a copy per row.
        """
        cdef void* conn = <void*><uintptr_t>conn_ptr
        cdef int was_nb
        cdef char* msg = NULL
        cdef int n = 0, space
        cdef char* buf
        cdef char* newbuf
        cdef Py_ssize_t cap, used = 0, total = 0, want
        cdef bint done = False
        cdef bint grow = False      # a row did not fit: the buffer grows first
        cdef _Coalescer co
        co.fd = -1
        co.since = 0
        co.got = 0
        co.rate = 0
        if block_size < 4096:
            block_size = 4096
        cap = block_size + block_size // 8    # room for the row that crosses block_size
        buf = <char*>malloc(cap)
        if buf == NULL:
            raise MemoryError()
        was_nb = self.isnonblocking(conn)
        # blocking mode: PQgetCopyData(async=0) then waits on the socket itself
        if was_nb:
            self.setnonblocking(conn, 0)
        try:
            self._start(conn, query, PGRES_COPY_OUT)
            while not done:
                with nogil:
                    while True:
                        space = <int>min(cap - used, 0x40000000)
                        n = self.getlineasync(conn, buf + used, space)
                        if n > 0:
                            used += n
                            co.got += n
                            if n == space:
                                grow = True    # maybe part of a row: its rest follows
                                break
                            if used >= block_size:
                                break
                            continue
                        if n < 0:              # CopyDone or an error: PQgetResult says
                            done = True
                            break
                        _co_wait(&co)
                        n = self.getcopydata(conn, &msg, 0)
                        if n < 0:
                            done = True
                            break
                        co.got += n
                        if n > cap - used:
                            grow = True        # kept in msg until the buffer has room
                            break
                        memcpy(buf + used, msg, n)
                        used += n
                        self.freemem(msg)
                        msg = NULL
                        if used >= block_size:
                            break
                if grow:
                    # a part row is completed before anything is handed out
                    grow = False
                    want = cap * 2
                    if msg != NULL and used + n > want:
                        want = used + n
                    newbuf = <char*>realloc(buf, want)
                    if newbuf == NULL:
                        with nogil:
                            self._abort_out(conn, msg)
                        msg = NULL
                        raise MemoryError(f"cannot allocate {want} bytes for a COPY row")
                    buf = newbuf
                    cap = want
                    if msg == NULL:
                        continue
                    memcpy(buf + used, msg, n)
                    used += n
                    self.freemem(msg)
                    msg = NULL
                    if used < block_size:
                        continue
                if used > 0:
                    block = PyBytes_FromStringAndSize(buf, used)
                    total += used
                    used = 0
                    if co.fd < 0 and not self.sslinuse(conn):
                        co.fd = self.socket(conn)     # a bulk stream: nap (_co_wait)
                    co.since = 0                      # write() may take a while
                    try:
                        write(block)
                    except BaseException:
                        with nogil:
                            self._abort_out(conn, NULL)
                        raise
                    del block
            if n == -2:
                err = self._conn_error(conn)
                with nogil:
                    self._drain_results(conn)
                raise err
            rows = self._finish(conn)
            return rows, total
        finally:
            if msg != NULL:
                self.freemem(msg)
            free(buf)
            if was_nb:
                self.setnonblocking(conn, 1)

    cdef void _abort_out(self, void* conn, char* pending_msg) noexcept nogil:
        # Stop the server, then read and drop whatever it already sent, so that the
        # connection is idle again (or in a failed transaction) instead of stuck in COPY.
        cdef char* m = NULL
        cdef int n
        if pending_msg != NULL:
            self.freemem(pending_msg)
        self._cancel(conn)
        while True:
            n = self.getcopydata(conn, &m, 0)
            if n < 0:
                break
            self.freemem(m)
        self._drain_results(conn)

    # -- COPY FROM STDIN ----------------------------------------------------------

    def copy_in_start(self, Py_ssize_t conn_ptr, bytes query):
        """Send ``query`` (a ``COPY ... FROM STDIN``); return the previous nonblocking flag.

        The connection is switched to blocking mode until ``copy_in_end``.
        """
        cdef void* conn = <void*><uintptr_t>conn_ptr
        cdef int was_nb = self.isnonblocking(conn)
        if was_nb:
            self.setnonblocking(conn, 0)
        try:
            self._start(conn, query, PGRES_COPY_IN)
        except BaseException:
            if was_nb:
                self.setnonblocking(conn, 1)
            raise
        return was_nb

    def copy_in_put(self, Py_ssize_t conn_ptr, const unsigned char[::1] data,
                    Py_ssize_t piece=1 << 20):
        """Send ``data`` with the GIL released, in pieces of at most ``piece`` bytes."""
        cdef void* conn = <void*><uintptr_t>conn_ptr
        cdef Py_ssize_t off = 0, size = data.shape[0], k
        cdef int rc = 1
        cdef const char* p
        if size == 0:
            return
        p = <const char*>&data[0]
        with nogil:
            while off < size:
                k = size - off
                if k > piece:
                    k = piece
                rc = self.putcopydata(conn, p + off, <int>k)
                if rc != 1:
                    break
                off += k
        if rc != 1:
            raise self._conn_error(conn)

    def copy_in_end(self, Py_ssize_t conn_ptr, int was_nb, error=None):
        """End the COPY (or abort it with ``error``, a str) and collect its result.

        Returns the row count; raises PumpError with the server's message when the
        server rejected the data (or, after an abort, the server's report of it).
        The nonblocking flag is restored in every case.
        """
        cdef void* conn = <void*><uintptr_t>conn_ptr
        cdef int rc
        cdef bytes err_b = None
        cdef const char* err_p = NULL
        if error is not None:
            err_b = str(error).encode("utf-8", "replace")
            err_p = err_b
        try:
            with nogil:
                rc = self.putcopyend(conn, err_p)
            if rc != 1:
                exc = self._conn_error(conn)
                with nogil:
                    self._drain_results(conn)
                raise exc
            return self._finish(conn)
        finally:
            if was_nb:
                self.setnonblocking(conn, 1)
