"""Move COPY data between a psycopg connection and Python in large blocks.

``copy_out(conn, query, write)`` runs a ``COPY ... TO STDOUT`` and hands ``write`` blocks
of about a megabyte (whole COPY messages, so whole rows for COPY BINARY);
``CopyIn`` runs a ``COPY ... FROM STDIN`` fed with large writes;
``copy_out_rows(conn, query, types)`` yields the decoded rows of a binary
``COPY ... TO STDOUT`` in batches, reading in a helper thread while the caller decodes;
``copy_in_rows(conn, query, rows, types)`` encodes rows in the caller's thread while a
helper thread sends the previous blocks; ``run_ahead(produce, depth)`` is the bounded
helper-thread pipeline under copy_out_rows (and restore's chunk read-ahead).

Two paths, one behaviour:

``libpq``
    The Cython loop ``dumpcodec._pgpump`` drives the libpq that psycopg itself uses, with
    the GIL released: no Python call per row.  Rows libpq already holds are copied
    straight into the block (``PQgetlineAsync``); ``PQgetCopyData`` only waits for more,
    and a bulk stream's reader naps while the socket is empty so that it wakes for ~64 kB
    rather than for each ~8 kB the server writes.  ``PQputCopyData`` sends.  The entry
    points are looked up at run time (nothing is linked at build time), so the system
    libpq of ``psycopg[c]``, the bundled one of ``psycopg[binary]`` and the ctypes one of
    the pure-Python ``psycopg`` all work.
``python``
    psycopg's own ``Copy`` object, read and written in large pieces.  Used when the
    extension is not built or libpq cannot be found; ``DUMPCODEC_PUMP=python`` forces it.

``PUMP`` says which path is active (``"libpq"`` or ``"python"``) and ``PUMP_DETAIL``
why.  On an exception from ``write`` (or from the caller inside ``CopyIn``) the COPY is
cancelled or aborted and the connection left usable (idle, or in a failed transaction
that the caller rolls back), never stuck in COPY state.  Server errors are raised as
the matching ``psycopg.errors`` class with the server's message.
"""
from __future__ import annotations

import ctypes
import os
import queue
import threading
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple, Union

import psycopg
import psycopg.errors
import psycopg.pq
from psycopg import sql

#: bytes per block handed to ``write`` by copy_out, and per write in CopyIn
DEFAULT_BLOCK_SIZE = 1 << 20

Query = Union[str, bytes, sql.Composable]


def _addresses_from(lib) -> dict:
    from . import _pgpump
    out = {}
    for name in _pgpump.FUNCTIONS:
        try:
            out[name] = ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
        except AttributeError:
            out[name] = None
    return out


def _lib_version(lib) -> Optional[int]:
    try:
        fn = lib.PQlibVersion
    except AttributeError:
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = []
    return int(fn())


def _find_libpq() -> Tuple[object, str]:
    """Return (ctypes library, description) for the libpq psycopg is using."""
    impl = psycopg.pq.__impl__
    want = psycopg.pq.version()
    candidates = []
    if impl == "python":
        from psycopg.pq import _pq_ctypes
        candidates.append((_pq_ctypes.pq, "psycopg ctypes libpq"))
    else:
        # dlsym on the handle of psycopg's own extension module searches that module's
        # dependencies, i.e. exactly the libpq it was linked against (the system one
        # for psycopg[c], the bundled, renamed one for psycopg[binary]).
        modname = "psycopg_c.pq" if impl == "c" else "psycopg_binary.pq"
        try:
            import importlib
            mod = importlib.import_module(modname)
            mode = getattr(os, "RTLD_NOLOAD", 0) | getattr(os, "RTLD_LAZY", 1)
            candidates.append((ctypes.CDLL(mod.__file__, mode=mode),
                               f"libpq linked by {modname}"))
        except (ImportError, OSError, AttributeError):
            pass
        # Linux: whatever libpq the process has mapped
        try:
            with open("/proc/self/maps") as f:
                paths = {line.split()[-1] for line in f if "libpq" in line}
            for path in sorted(paths):
                if os.path.basename(path).startswith("libpq") and os.path.exists(path):
                    candidates.append((ctypes.CDLL(path), path))
        except OSError:
            pass
    for lib, desc in candidates:
        if _lib_version(lib) == want:
            return lib, desc
    raise RuntimeError(f"no loaded libpq matches psycopg's (impl {impl}, version {want})")


def _init():
    if os.environ.get("DUMPCODEC_PUMP", "").lower() == "python":
        return None, "python", "forced by DUMPCODEC_PUMP=python"
    try:
        from . import _pgpump
    except ImportError as exc:
        return None, "python", f"dumpcodec._pgpump not built ({exc})"
    try:
        lib, desc = _find_libpq()
        return _pgpump.LibPQ(_addresses_from(lib), desc), "libpq", desc
    except (RuntimeError, ValueError, OSError) as exc:
        return None, "python", str(exc)


_LIBPQ, PUMP, PUMP_DETAIL = _init()


def _as_bytes(conn: psycopg.Connection, query: Query) -> bytes:
    if isinstance(query, sql.Composable):
        return query.as_bytes(conn)
    if isinstance(query, str):
        return query.encode(conn.info.encoding)
    return bytes(query)


def _server_error(exc) -> psycopg.Error:
    message, sqlstate = exc.args
    cls = psycopg.OperationalError
    if sqlstate:
        try:
            cls = psycopg.errors.lookup(sqlstate)
        except KeyError:
            pass
    return cls(message)


def copy_out(conn: psycopg.Connection, query: Query, write: Callable[[bytes], object],
             block_size: int = DEFAULT_BLOCK_SIZE) -> Tuple[int, int]:
    """Run ``query`` (``COPY ... TO STDOUT``), passing blocks of data to ``write``.

    Returns ``(rows, nbytes)``.  The connection must not be used by another thread
    meanwhile (its lock is held).
    """
    qb = _as_bytes(conn, query)
    if _LIBPQ is not None:
        from . import _pgpump
        with conn.lock:
            try:
                return _LIBPQ.copy_out(conn.pgconn.pgconn_ptr, qb, write, block_size)
            except _pgpump.PumpError as exc:
                raise _server_error(exc) from None
    total = 0
    rows = -1
    buf = bytearray()
    with conn.cursor() as cur:
        with cur.copy(qb) as cp:
            for data in cp:
                buf += data
                if len(buf) >= block_size:
                    total += len(buf)
                    write(bytes(buf))
                    buf.clear()
            if buf:
                total += len(buf)
                write(bytes(buf))
        rows = cur.rowcount
    return rows, total


class Stopped(Exception):
    """Raised in a run_ahead producer's ``put`` once the consumer has gone away."""


def run_ahead(produce: Callable[[Callable[[Any], None]], object], depth: int,
              name: str = "dumpcodec-run-ahead") -> Iterator[Any]:
    """Run ``produce(put)`` in a helper thread; yield what it puts, in order.

    ``put`` waits while ``depth`` items are out (queued, or held by the consumer until
    it asks for the next one), so the producer makes the next item while the consumer
    works on this one.  An exception in ``produce`` is raised here after the items put
    before it.  Closing the generator early (break, an exception, ``close()``) makes
    the producer's next ``put`` raise :class:`Stopped` and waits for the thread to end.
    """
    slots = threading.Semaphore(max(1, depth))
    items: "queue.Queue" = queue.Queue()
    stop = threading.Event()

    def put(item) -> None:
        while not slots.acquire(timeout=0.1):
            if stop.is_set():
                raise Stopped()
        if stop.is_set():
            raise Stopped()
        items.put((False, item))

    def run() -> None:
        try:
            produce(put)
        except Stopped:
            return
        except BaseException as exc:
            items.put((True, exc))
            return
        items.put((True, None))

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while True:
            last, value = items.get()
            if last:
                if value is not None:
                    raise value
                return
            yield value
            del value
            slots.release()
    finally:
        stop.set()
        slots.release()           # a producer waiting for a slot sees ``stop``
        thread.join()


#: blocks copy_out_rows' reader may hold ahead of the decoding
ROWS_AHEAD = 4


def copy_out_rows(conn: psycopg.Connection, query: Query, types: Optional[Sequence[Any]] = None,
                  *, names: Optional[Sequence[str]] = None, raw: bool = False,
                  decoder: Any = None, block_size: int = DEFAULT_BLOCK_SIZE,
                  ahead: int = ROWS_AHEAD) -> Iterator[List[tuple]]:
    """Run ``query`` (a ``COPY ... TO STDOUT (FORMAT binary)``) and yield its rows,
    decoded by :class:`dumpcodec.copy.Decoder` (``types``, ``names``, ``raw`` as
    there), in batches of a block's worth; or by ``decoder``, a fresh Decoder of
    either implementation (``dumpcodec._fastcopy`` or ``dumpcodec.copy.pure``) made
    by the caller.

    A helper thread reads the server's data (with the GIL released while it waits)
    at most ``ahead`` blocks in front of the decoding done in this thread, so the
    server, the socket and the decoder work at the same time.  Stopping early (break,
    an exception, ``close()``) cancels the COPY and leaves the connection usable; the
    connection must not be used by another thread until the generator is done.
    Malformed data raises :class:`~dumpcodec.errors.CopyFormatError`; server errors
    the matching ``psycopg.errors`` class.
    """
    if decoder is None:
        from .copy import Decoder
        decoder = Decoder(types, names=names, raw=raw)
    blocks = run_ahead(lambda put: copy_out(conn, query, put, block_size), ahead,
                       "dumpcodec-copy-out")
    try:
        for block in blocks:
            rows = decoder.feed(block)
            del block
            if rows:
                yield rows
        decoder.close()
    finally:
        blocks.close()          # cancels the COPY if we stop early


class CopyIn:
    """``COPY ... FROM STDIN`` fed with large writes; a context manager.

    >>> with CopyIn(conn, "COPY t FROM STDIN (FORMAT binary)") as cp:  # doctest: +SKIP
    ...     cp.write(data)
    >>> cp.rows  # doctest: +SKIP

    Leaving the block with an exception aborts the COPY (the server rolls the
    statement back); leaving it normally ends the COPY and raises the server's error
    if it rejected the data.
    """

    def __init__(self, conn: psycopg.Connection, query: Query,
                 block_size: int = DEFAULT_BLOCK_SIZE):
        self.conn = conn
        self.query = _as_bytes(conn, query)
        self.block_size = block_size
        self.rows = -1
        self.nbytes = 0
        self._was_nb = 0
        self._cur = None
        self._copy = None
        self._cm = None

    def __enter__(self) -> "CopyIn":
        if _LIBPQ is not None:
            from . import _pgpump
            self.conn.lock.acquire()
            try:
                self._was_nb = _LIBPQ.copy_in_start(self.conn.pgconn.pgconn_ptr, self.query)
            except _pgpump.PumpError as exc:
                self.conn.lock.release()
                raise _server_error(exc) from None
            except BaseException:
                self.conn.lock.release()
                raise
        else:
            self._cur = self.conn.cursor()
            self._cm = self._cur.copy(self.query)
            self._copy = self._cm.__enter__()
        return self

    def write(self, data) -> None:
        """Send ``data`` (bytes-like); any size, split into large pieces."""
        n = len(data)
        if not n:
            return
        self.nbytes += n
        if self._copy is not None:
            self._copy.write(data)
            return
        from . import _pgpump
        try:
            _LIBPQ.copy_in_put(self.conn.pgconn.pgconn_ptr, data, self.block_size)
        except _pgpump.PumpError as exc:
            raise _server_error(exc) from None

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._copy is not None:
            try:
                self._cm.__exit__(exc_type, exc, tb)
                self.rows = self._cur.rowcount
            finally:
                self._cur.close()
            return
        from . import _pgpump
        try:
            err = None if exc_type is None else f"aborted by client: {exc_type.__name__}"
            try:
                self.rows = _LIBPQ.copy_in_end(self.conn.pgconn.pgconn_ptr,
                                               self._was_nb, err)
            except _pgpump.PumpError as e:
                if exc_type is None:
                    raise _server_error(e) from None
                # the abort itself reports "aborted by client": the caller's error wins
        finally:
            self.conn.lock.release()


#: bytes of encoded rows per block copy_in_rows hands its sender: small blocks keep
#: the server fed without pauses (on the benchmark tables 64 kB loaded 5-6% faster
#: than 256 kB and 1 MB; 16-32 kB no faster)
ROWS_BLOCK = 64 << 10


def copy_in_rows(conn: psycopg.Connection, query: Query, rows: Any,
                 types: Optional[Sequence[Any]] = None, *, encoder: Any = None,
                 block_size: int = ROWS_BLOCK, ahead: int = ROWS_AHEAD) -> int:
    """Load ``rows`` (an iterable of tuples) with ``query``, a ``COPY ... FROM STDIN
    (FORMAT binary)``; return the number of rows the server loaded.

    Rows are encoded by :class:`dumpcodec.copy.Encoder` (``types`` as there; or by
    ``encoder``, a fresh Encoder of either implementation made by the caller) in this
    thread, in blocks of about ``block_size`` bytes, while a helper thread sends the
    previous ones (at most ``ahead`` waiting), so encoding and the server's work
    overlap.  A value that does not encode raises its TypeError/ValueError naming
    row and column; that, or any exception from ``rows``, aborts the COPY (the server
    loads nothing) and leaves the connection usable.  Server errors are raised as the
    matching ``psycopg.errors`` class.  The connection must not be used by another
    thread meanwhile.
    """
    if encoder is None:
        from .copy import Encoder
        encoder = Encoder(types)
    blocks: "queue.Queue" = queue.Queue(maxsize=max(1, ahead))
    end, abort = object(), object()
    failure: List[BaseException] = []
    loaded: List[int] = []

    def send() -> None:
        try:
            with CopyIn(conn, query) as cp:
                while True:
                    block = blocks.get()
                    if block is end:
                        break
                    if block is abort:
                        raise Stopped()
                    cp.write(block)
                    del block
            loaded.append(cp.rows)
        except Stopped:
            pass
        except BaseException as exc:
            failure.append(exc)
        finally:
            # a caller blocked on a full queue must see the end
            while True:
                try:
                    blocks.get_nowait()
                except queue.Empty:
                    break

    def put(item) -> None:
        while sender.is_alive():
            try:
                blocks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        if failure:
            raise failure[0]

    sender = threading.Thread(target=send, name="dumpcodec-copy-in", daemon=True)
    sender.start()
    try:
        put(encoder.header())
        batch: List[Any] = []
        per_block = 256          # rows per encode() call, adjusted to ~block_size bytes
        for row in rows:
            batch.append(row)
            if len(batch) >= per_block:
                data = encoder.encode(batch)
                per_block = max(16, min(1 << 20, per_block * block_size // max(1, len(data))))
                batch = []
                put(data)
        if batch:
            put(encoder.encode(batch))
        put(encoder.trailer())
        put(end)
    except BaseException:
        try:
            put(abort)
        except BaseException:
            pass
        raise
    finally:
        sender.join()
    if failure:
        raise failure[0]
    return loaded[0]
