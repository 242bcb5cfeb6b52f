"""The restore's connections: at most N, each reset before every table."""
from __future__ import annotations

import threading
from typing import Callable, List, Optional

import psycopg
from psycopg import sql


class Pool:
    """At most ``size`` autocommit connections, handed out one thread at a time.

    :meth:`get` resets the session first (``RESET ALL``, the role, the archive's
    client encoding), so that nothing one table's work left behind -- a setting, a
    role, a search path -- reaches the next table.
    """

    def __init__(self, conninfo: str, size: int, encoding: Callable[[], Optional[str]],
                 role: Optional[str] = None):
        self.conninfo = conninfo
        self.size = size
        # asked when a connection is handed out: a reader knows the archive's
        # client_encoding only once it has read the archive's first member
        self.encoding = encoding
        self.role = role
        self._free: List[psycopg.Connection] = []
        self._all: List[psycopg.Connection] = []
        self._cond = threading.Condition()

    def get(self) -> psycopg.Connection:
        conn = None
        with self._cond:
            while conn is None:
                while self._free and conn is None:
                    c = self._free.pop()
                    if c.closed:
                        self._all.remove(c)
                    else:
                        conn = c
                if conn is None and len(self._all) < self.size:
                    self._all.append(None)     # a slot, taken while connecting
                    break
                if conn is None:
                    self._cond.wait()
        if conn is None:
            try:
                conn = psycopg.connect(self.conninfo, autocommit=True)
                # psycopg's own prepared statements off: after DDL it deallocates
                # all of them, the allow-list's (prepared once, Check.statements) too
                conn.prepare_threshold = None
            except BaseException:
                with self._cond:
                    self._all.remove(None)
                    self._cond.notify()
                raise
            with self._cond:
                self._all[self._all.index(None)] = conn
        return self._reset(conn)

    def _reset(self, conn: psycopg.Connection) -> psycopg.Connection:
        # jit off: the restore's catalog queries (the allow-list's above all) are
        # small, but their row estimates make the server JIT-compile them, which took
        # seconds per query.  Generic plans: the allow-list's prepared queries are
        # planned once per connection, not at each EXECUTE (safety.Check.statements).
        # The setting holds for the whole session: foreign keys' checks get generic
        # plans from their first row (PostgreSQL would choose them after five), and
        # so would the queries of a target's own triggers that fire when rows are
        # appended to an existing table (--if-exists append)
        parts = [sql.SQL("RESET ALL"), sql.SQL("SET jit = off"),
                 sql.SQL("SET plan_cache_mode = force_generic_plan"),
                 sql.SQL("SET ROLE {}").format(sql.Identifier(self.role)) if self.role
                 else sql.SQL("RESET ROLE")]
        encoding = self.encoding()
        if encoding:
            # text values in the dump travel in this encoding (binary COPY too)
            parts.append(sql.SQL("SET client_encoding TO {}").format(sql.Literal(encoding)))
        try:
            conn.execute(sql.SQL("; ").join(parts))
        except BaseException:
            self.put(conn)
            raise
        return conn

    def put(self, conn: psycopg.Connection) -> None:
        with self._cond:
            self._free.append(conn)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            for c in self._all:
                try:
                    if c is not None:
                        c.close()
                except Exception:
                    pass
            self._all.clear()
            self._free.clear()


def rollback(conn: psycopg.Connection) -> None:
    """End a failed transaction; a connection that cannot is closed (the pool then
    opens a new one)."""
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
    except psycopg.Error:
        try:
            conn.close()
        except Exception:
            pass


def reason(exc: BaseException) -> str:
    """One line saying why: the server's primary message, or the exception's text."""
    if isinstance(exc, psycopg.Error):
        text = str(exc).strip()
        msg = (exc.diag.message_primary or
               (text.splitlines()[0] if text else type(exc).__name__))
        return f"{type(exc).__name__}: {msg}"
    text = str(exc).strip()
    return text if text else type(exc).__name__
