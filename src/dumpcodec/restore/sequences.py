"""Free-standing sequences (owned by no column) that the archive recorded.

``create_dump(..., sequences=[schemas])`` records them in the archive info under
``sequences`` (owned ones travel in their table's definition).  A restore creates
the ones that do not exist; an existing one is set to the archive's value only when
a ``tables`` pattern of the user names it (never by a whole-archive restore: the
archive chooses the names), and only with ``if_exists`` other than error/skip.
"""
from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any, Dict

import psycopg
from psycopg import sql

from ..errors import DumpcodecError, RestoreError
from ..schema import catalog
from . import choose
from .pool import reason, rollback

if TYPE_CHECKING:   # pragma: no cover
    from .run import RestoreRun

_SEQ_TYPES = ("smallint", "integer", "bigint")


def restore_free_sequences(run: "RestoreRun", conn: psycopg.Connection) -> None:
    opts = run.opts
    summary = run.summary
    # create_dump records them with writer.set_info(sequences=...): under "info"
    seqs = (run.reader.info.get("info") or {}).get("sequences") or []
    if not isinstance(seqs, list):
        return
    for seq in seqs:
        try:
            _one(conn, seq, opts, summary)
        except (psycopg.Error, DumpcodecError, KeyError, TypeError, ValueError) as exc:
            rollback(conn)
            summary.failed.append((f"sequence {seq.get('schema')}.{seq.get('name')}"
                                   if isinstance(seq, dict) else "sequence", reason(exc)))


def _one(conn: psycopg.Connection, seq: Dict[str, Any], opts, summary) -> None:
    schema_, name = str(seq["schema"]), str(seq["name"])
    qual = f"{schema_}.{name}"
    selected = bool(opts.tables) and any(fnmatch.fnmatchcase(n, p) for p in opts.tables
                                         for n in (qual, name))
    if opts.tables and not selected:
        return
    if not choose.sequence_wanted(schema_, name, opts.selection):
        return      # -n/-N/-T (restore.choose) leave it out
    dtype = seq["data_type"]
    if dtype not in _SEQ_TYPES:
        raise RestoreError(f"bad data type {dtype!r}")
    nums = {k: int(seq[k]) for k in ("start", "increment", "min_value", "max_value",
                                     "cache")}
    target = opts.target_schema or schema_
    if catalog.reserved_schema(target):
        raise RestoreError(f"refused: schema {target} is reserved for the server")
    ident = sql.Identifier(target, name)
    exists = catalog.relation_exists(conn, target, name)
    if exists and opts.if_exists == "error":
        raise RestoreError(f"sequence {target}.{name} already exists")
    if exists and (opts.if_exists == "skip" or not selected):
        # an existing sequence is the user's: only one they named is touched
        summary.skipped.append(qual)
        if not selected and opts.if_exists != "skip":
            summary.warnings.append(f"sequence {target}.{name} exists and was left as it "
                                    f"is (name it with -t to set it from the archive)")
        return
    conn.execute("BEGIN")
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(target)))
    if not exists:
        conn.execute(sql.SQL(
            "CREATE SEQUENCE {} AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} "
            "START WITH {} CACHE {} {}").format(
            ident, sql.SQL(dtype), sql.Literal(nums["increment"]),
            sql.Literal(nums["min_value"]), sql.Literal(nums["max_value"]),
            sql.Literal(nums["start"]), sql.Literal(nums["cache"]),
            sql.SQL("CYCLE" if seq.get("cycle") else "NO CYCLE")))
    elif conn.execute("SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = "
                      "pg_catalog.to_regclass(%s)",
                      (ident.as_string(conn),)).fetchone()[0] != "S":
        raise RestoreError(f"{target}.{name} exists and is not a sequence")
    if isinstance(seq.get("comment"), str) and not exists:
        conn.execute(sql.SQL("COMMENT ON SEQUENCE {} IS {}").format(
            ident, sql.Literal(seq["comment"])))
    if seq.get("last_value") is not None:
        conn.execute("SELECT pg_catalog.setval(%s::pg_catalog.regclass, %s, %s)",
                     (ident.as_string(conn), int(seq["last_value"]),
                      bool(seq.get("is_called"))))
    conn.execute("COMMIT")
