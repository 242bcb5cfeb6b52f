"""Free-standing sequences (owned by no column) that the archive recorded.

``create_dump(..., sequences=[schemas])`` records them in the archive info under
``sequences`` (owned ones travel in their table's definition).  A restore creates
the ones that do not exist; an existing one is set to the archive's value only when
a ``tables`` pattern of the user names it (never by a whole-archive restore: the
archive chooses the names), and only with ``if_exists`` other than error/skip.
"""
from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import psycopg
from psycopg import sql

from .. import schema
from ..archive.manifest import FreeSequence, free_sequences
from ..errors import DumpcodecError, RestoreError
from ..schema import catalog
from ..schema.selection import Selection
from . import choose
from .pool import reason, rollback

if TYPE_CHECKING:   # pragma: no cover
    from .context import RunContext


def as_sequence_def(f: FreeSequence) -> "schema.SequenceDef":
    """The archive's record of a free-standing sequence as the schema layer's
    :class:`~dumpcodec.schema.SequenceDef` (owned by no column)."""
    return schema.SequenceDef(
        schema=f.schema, name=f.name, column=None, identity=False, data_type=f.data_type,
        start=f.start, increment=f.increment, min_value=f.min_value,
        max_value=f.max_value, cache=f.cache, cycle=f.cycle, last_value=f.last_value,
        is_called=f.is_called, comment=f.comment)


def archive_sequences(info: Dict[str, Any], tables: Optional[Sequence[str]],
                      selection: Optional[Selection]) -> List["schema.SequenceDef"]:
    """The free sequences of an archive's info that the selection keeps (``tables``
    patterns, pg_restore's ``-n``/``-N``/``-T``); a bad record raises ArchiveError."""
    out = []
    for f in free_sequences(info.get("info") or {}):
        if tables and not _named(f.schema, f.name, tables):
            continue
        if choose.sequence_wanted(f.schema, f.name, selection):
            out.append(as_sequence_def(f))
    return out


def _named(schema_: str, name: str, tables: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(n, p) for p in tables for n in (f"{schema_}.{name}", name))


def restore_free_sequences(run: "RunContext", conn: psycopg.Connection) -> None:
    opts = run.opts
    try:
        seqs = archive_sequences(run.reader.info, opts.tables, opts.selection)
    except DumpcodecError as exc:
        run.summary.failed.append(("sequences", reason(exc)))
        return
    for seq in seqs:
        try:
            _one(conn, seq, run)
        except (psycopg.Error, DumpcodecError) as exc:
            rollback(conn)
            run.summary.failed.append((f"sequence {seq.schema}.{seq.name}", reason(exc)))


def _one(conn: psycopg.Connection, seq: "schema.SequenceDef", run: "RunContext") -> None:
    opts, summary = run.opts, run.summary
    qual = f"{seq.schema}.{seq.name}"
    target = opts.target_schema or seq.schema
    if catalog.reserved_schema(target):
        raise RestoreError(f"refused: schema {target} is reserved for the server")
    exists = catalog.relation_exists(conn, target, seq.name)
    if exists and opts.if_exists == "error":
        raise RestoreError(f"sequence {target}.{seq.name} already exists")
    if exists and (opts.if_exists == "skip" or not opts.tables):
        # an existing sequence is the user's: only one they named is touched
        summary.skipped.append(qual)
        if opts.if_exists != "skip":
            summary.warnings.append(f"sequence {target}.{seq.name} exists and was left "
                                    f"as it is (name it with -t to set it from the "
                                    f"archive)")
        return
    if exists and conn.execute(
            "SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = "
            "pg_catalog.to_regclass(%s)", (sql.Identifier(target, seq.name).as_string(conn),)
            ).fetchone()[0] != "S":
        raise RestoreError(f"{target}.{seq.name} exists and is not a sequence")
    run.ensure_schema(conn, target)
    conn.execute("BEGIN")
    for stmt in schema.free_sequence_statements(seq, target, create=not exists):
        conn.execute(stmt)
    conn.execute("COMMIT")
