"""The tables next in line, prepared in a helper thread while the connections wait.

A small table's restore is mostly round trips: while the server creates the table,
loads its rows and builds its keys, the client is idle, and while the client works
(parsing the table's definition, planning its DDL, reading and decompressing its data)
the server is.  :class:`Ahead` walks the tables in restore order a few ahead of the
ones being restored and does the client-side work that needs no connection:

- the target (:meth:`RunContext.target`: the definition parsed from the archive),
- the DDL plan (:func:`dumpcodec.schema.ddl_plan`) of a table whose definition needs
  no types (with types the plan asks the target which exist, on the table's own
  connection),
- the data of a table of one small member, read, decompressed and checked against
  the manifest's SHA-256 by a reader of its own.

Nothing is decided here: everything the restore checks (the archive's rules, the
allow-list, the target's catalog) is checked by the table's restore as before, on
what this prepared.  Whatever fails here (a bad definition, a checksum) is simply not
prepared: the table's restore does that step itself and fails as it would have.  A
table taken before its turn came here is not prepared twice.  Memory: at most
``depth`` tables of at most :data:`MAX_DATA` bytes of data each.

The helper thread holds the GIL while it works; a connection whose reply arrived
waits for it at most the interpreter's switch interval, 5 ms by default, which is
more than most of a small table's round trips.  :func:`short_switch_interval` lowers
it while the restore runs.
"""
from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from psycopg import sql

from .. import schema
from .select import Item

#: data of a table of one member up to this size is read ahead (uncompressed bytes)
MAX_DATA = 4 << 20

#: the switch interval while tables are prepared ahead (seconds): a thread whose reply
#: came waits at most this for the GIL; short enough for a round trip of ~0.1 ms not to
#: wait for the helper's work, long enough not to switch threads on every few bytecodes
SWITCH_INTERVAL = 0.0002


class Ready:
    """What :class:`Ahead` prepared for one table (each part None when not prepared)."""
    __slots__ = ("target", "plan", "data")

    def __init__(self, target: Tuple[str, str, Any]):
        self.target = target
        self.plan: Any = None           # schema.DDLPlan of target[2] in target[0]
        self.data: Optional[List[Any]] = None   # the table's chunks, checked

    def plan_for(self, tdef: Any, schema_: str) -> Any:
        """The prepared plan if it was made for this definition and schema, else None."""
        if self.plan is not None and tdef is self.target[2] and schema_ == self.target[0]:
            return self.plan
        return None


class Ahead:
    """Prepares ``items`` in order in a helper thread, at most ``depth`` beyond the
    last one taken; :meth:`take` hands a table's preparation over (or None)."""

    def __init__(self, items: Sequence[Item], target: Callable[[Item], Tuple[str, str, Any]],
                 reader: Optional[Callable[[], Any]], data: bool, depth: int):
        self._items = list(items)
        self._index = {it.table_id: i for i, it in enumerate(self._items)}
        self._target = target
        self._open_reader = reader
        self._data = data
        self._depth = max(1, depth)
        self._cond = threading.Condition()
        self._ready: Dict[str, Optional[Ready]] = {}
        self._taken: set = set()
        self._busy: Optional[str] = None
        self._front = -1                  # index of the furthest table taken
        self._closed = False
        self._reader: Any = None
        self._thread = threading.Thread(target=self._run, name="dumpcodec-prepare",
                                        daemon=True)
        self._thread.start()

    def take(self, item: Item) -> Optional[Ready]:
        """The table's preparation, waited for if it is under way; None when it was not
        prepared (not reached yet, or a step failed: the caller does it itself)."""
        with self._cond:
            self._taken.add(item.table_id)
            self._front = max(self._front, self._index.get(item.table_id, -1))
            self._cond.notify_all()
            while self._busy == item.table_id:
                self._cond.wait()
            return self._ready.pop(item.table_id, None)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._ready.clear()
            self._cond.notify_all()
        self._thread.join()
        if self._reader is not None:
            try:
                self._reader.close()
            except Exception:
                pass

    def _run(self) -> None:
        for i, item in enumerate(self._items):
            with self._cond:
                while not self._closed and i > self._front + self._depth:
                    self._cond.wait()
                if self._closed:
                    return
                if item.table_id in self._taken:
                    continue
                self._busy = item.table_id
            ready = None
            try:
                ready = self._prepare(item)
            except BaseException:      # not prepared: the table's restore does it
                ready = None
            finally:
                with self._cond:
                    self._busy = None
                    if ready is not None and not self._closed \
                            and item.table_id not in self._taken:
                        self._ready[item.table_id] = ready
                    self._cond.notify_all()

    def _prepare(self, item: Item) -> Optional[Ready]:
        try:
            ready = Ready(self._target(item))
        except Exception:
            return None
        schema_, _, tdef = ready.target
        if tdef is not None and not tdef.types and tdef.kind != "partitioned":
            # as table._create makes it (a partitioned table dumped through its root
            # becomes a plain one there: planned there)
            try:
                ready.plan = prerender(schema.ddl_plan(tdef, schema_))
            except Exception:
                ready.plan = None
        members = item.info.members
        if self._data and self._open_reader is not None and item.info.has_data \
                and len(members) == 1 and members[0].size <= MAX_DATA:
            try:
                if self._reader is None:
                    self._reader = self._open_reader()
                ready.data = list(self._reader.read_raw(item.table_id))
            except Exception:
                ready.data = None
        return ready


#: the plan's phases that table.load and table.finish run as they are
PRERENDERED = ("setup", "serials", "table", "post_data", "sequences")


def prerender(plan: Any) -> Any:
    """``plan`` with the statements of its :data:`PRERENDERED` phases rendered to
    bytes here, not on the connection while the server waits.

    Rendered without a connection (``as_bytes(None)``: identifiers quoted and their
    quotes doubled, literals quoted and theirs doubled), which gives the bytes the
    connection would give when they are ASCII, hold no backslash (a connection with
    ``standard_conforming_strings`` off escapes them otherwise) and no NUL; any other
    statement stays as it was, rendered on the connection.  A test holds the two
    renderings equal (tests/dumprestore/test_restore_ahead.py)."""
    for phase in PRERENDERED:
        stmts = getattr(plan, phase)
        for i, stmt in enumerate(stmts):
            if not isinstance(stmt, sql.Composable):
                continue
            text = stmt.as_bytes(None)
            if text.isascii() and b"\\" not in text and b"\0" not in text:
                if stmt is getattr(plan, "create_table", None):
                    plan.create_table = text
                stmts[i] = text
    return plan


@contextlib.contextmanager
def short_switch_interval(seconds: float = SWITCH_INTERVAL) -> Iterator[None]:
    """The interpreter's switch interval lowered to ``seconds`` (never raised) inside,
    put back after.  Process-wide: another thread that lowers it meanwhile keeps its
    value only until this one ends."""
    old = sys.getswitchinterval()
    if old <= seconds:
        yield
        return
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(old)
