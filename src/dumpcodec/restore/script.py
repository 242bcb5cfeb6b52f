"""What a restore would do, without a database: the SQL script and the list.

:func:`restore_script` writes the statements a restore of an archive runs to create
its tables (``dumpcodec load --schema-only -f FILE``, as ``pg_restore -f``): per table
in one transaction, in the restore's order -- the types the table needs, its owned
sequences, the table, keys and indexes, sequence values, comments (and any later
phase of :data:`dumpcodec.schema.PHASES`) -- then every foreign key, then the
archive's free-standing sequences.  No data.  :func:`restore_list` lists the same
items, one a line, as ``pg_restore -l`` does.

Both are built from the archive alone: the statements come from
:func:`dumpcodec.schema.ddl_plan`, which holds every expression to the allow-list by
its parse (the *static* checks), and the archive's structural rules
(:mod:`.select`) are applied.  What they cannot do is what a restore does on the
server before it runs any DDL: resolve each expression's functions, operators, types
and collations there and accept them only when each is an allowed built-in
(:mod:`dumpcodec.schema.safety`).  The script says so in its first lines: review it
before running it, and run it as a role that is not a superuser.

Differences from a restore into an empty database, on purpose: a type the archive
creates is created once (a later table that needs it finds it); a target schema is
created with ``IF NOT EXISTS``; a type that exists already makes that table's
transaction fail (a restore would compare and reuse it).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import IO, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from psycopg import sql

from .. import schema
from ..archive import open_dump
from ..errors import DumpcodecError, RestoreError
from ..schema.selection import Selection
from ..schema import catalog
from . import choose, select
from .sequences import archive_sequences
from .select import Item

#: the first lines of every script (SQL comments)
SCRIPT_HEADER = """\
-- Written by dumpcodec load --schema-only from {source}: the SQL that a restore of
-- this archive runs to create its tables (no data), without a database connection.
--
-- NOT CHECKED ON A SERVER.  A restore resolves every expression of the archive
-- (defaults, CHECKs, generated columns, index expressions and predicates, partition
-- keys) on the target server before it runs any of this, and accepts it only when
-- every function, operator, type and collation in it is an allowed built-in
-- (docs/RELIABILITY.md).  This script had only the static checks: each expression
-- parsed and held to the allow-list by name.  An archive is untrusted input: review
-- this script before running it, and run it as a role that is not a superuser.
"""


@dataclass
class TableScript:
    """One table's part of the script."""
    table_id: str
    target: str                       # schema.name
    kind: str                         # table, partitioned table, partition
    steps: List[Tuple[str, str]] = field(default_factory=list)   # (phase, SQL)
    foreign_keys: List[Tuple[str, str]] = field(default_factory=list)
    data: bool = True
    rows: Optional[int] = None


@dataclass
class RestorePlan:
    """Everything :func:`restore_script` and :func:`restore_list` show."""
    source: str
    tables: List[TableScript] = field(default_factory=list)
    sequences: List[Tuple[str, str]] = field(default_factory=list)   # (name, SQL)
    #: tables left out, with the reason (a structural rule, a refused expression)
    refused: List[Tuple[str, str]] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    info: Dict[str, Any] = field(default_factory=dict)


def _items(source: Union[str, os.PathLike, IO[bytes]],
           storage_options: Optional[Dict[str, Any]] = None
           ) -> Tuple[List[Item], Dict[str, Any]]:
    with open_dump(source, "r", storage_options=storage_options) as reader:
        if isinstance(source, (str, os.PathLike)) and os.fspath(source) != "-":
            items = [select.item_from(t) for t in reader.tables()]
        else:
            # a pipe: one pass, the data read past
            items = []
            for info, data in reader.iter_tables():
                for _ in data:
                    pass
                items.append(select.item_from(info))
        return items, dict(reader.info)


def _kind(tdef: Any) -> str:
    return {"partitioned": "partitioned table", "partition": "partition"}.get(
        tdef.kind, "table")


def build_plan(source: Union[str, os.PathLike, IO[bytes]], *,
               tables: Optional[Sequence[str]] = None,
               selection: Optional[Selection] = None,
               target_schema: Optional[str] = None, indexes: bool = True,
               allow_attach: bool = False,
               storage_options: Optional[Dict[str, Any]] = None) -> RestorePlan:
    """The statements a restore of ``source`` would run (options as for
    :func:`~dumpcodec.restore.restore_dump`), table by table, no connection."""
    import sys
    if isinstance(source, (str, os.PathLike)) and os.fspath(source) == "-":
        name, source = "stdin", sys.stdin.buffer
    else:
        name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else \
            str(getattr(source, "name", "a stream"))
        if "://" in name:
            from ..archive.remote import shown_url
            name = shown_url(name)
    items, info = _items(source, storage_options)
    plan = RestorePlan(name, info=info)
    items, unmatched = choose.choose(items, tables, selection)
    plan.warnings += [f"no matching tables were found for {u}" for u in unmatched]
    select.check_archive(items, target_schema, {})
    restoring = {it.source for it in items if it.source is not None}
    created_types: Dict[Tuple[str, str], Any] = {}
    for item in items:
        try:
            plan.tables.append(_table(item, target_schema, indexes, restoring,
                                      allow_attach, created_types))
        except select.Unmapped as exc:
            plan.warnings.append(str(exc))
        except DumpcodecError as exc:
            plan.refused.append((item.table_id, str(exc)))
    plan.sequences = _free_sequences(info, tables, selection, target_schema)
    return plan


def _table(item: Item, target_schema: Optional[str], indexes: bool,
           restoring: set, allow_attach: bool,
           created_types: Dict[Tuple[str, str], Any]) -> TableScript:
    schema_, name, tdef = select.target_of(item, target_schema, {})
    select.check_item(item, schema_, name, tdef, restored=restoring,
                      allow_attach=allow_attach)
    if tdef.kind == "partitioned" and item.extra.get("via_root"):
        # as a restore into a database without the table: a plain table of the same
        # columns (the partitions did not come along)
        tdef = dataclasses.replace(tdef, kind="table", partition_key=None)
    for ty in tdef.types:
        ty_schema = schema_ if ty.schema == tdef.schema else ty.schema
        if ty.kind not in ("base", "extension") and ty_schema != schema_:
            raise RestoreError(
                f"{item.table_id}: refused: type {ty_schema}.{ty.name} would be created "
                f"outside the table's schema {schema_}")
    # types this script created for an earlier table, and the extension and base
    # types a restore requires to exist, count as there already
    existing = dict(created_types)
    for ty in tdef.types:
        key = (schema_ if ty.schema == tdef.schema else ty.schema, ty.name)
        if ty.kind in ("base", "extension"):
            existing.setdefault(key, ty)
    ddl = schema.ddl_plan(tdef, schema_, existing_types=existing)
    for ty in tdef.types:
        key = (schema_ if ty.schema == tdef.schema else ty.schema, ty.name)
        created_types.setdefault(key, ty)
    out = TableScript(item.table_id, f"{schema_}.{name}", _kind(tdef),
                      data=item.extra.get("data", True) is not False, rows=item.info.rows)
    for sch in ddl.schemas:
        out.steps.append(("schema", sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
            sql.Identifier(sch)).as_string(None)))
    out.steps += [("setup", s.as_string(None)) for s in ddl.setup]
    for phase in schema.PHASES:
        if phase == "foreign_keys" or (phase == "post_data" and not indexes):
            continue
        out.steps += [(phase, s.as_string(None)) for s in getattr(ddl, phase)]
    if indexes:
        setup = [s.as_string(None) for s in ddl.setup]
        for stmt in ddl.foreign_keys:
            out.foreign_keys.append(("; ".join(setup), stmt.as_string(None)))
    return out


def _free_sequences(info: Dict[str, Any], tables: Optional[Sequence[str]],
                    selection: Optional[Selection],
                    target_schema: Optional[str]) -> List[Tuple[str, str]]:
    """The archive's free-standing sequences, as a restore creates them (only when no
    ``tables`` pattern narrows the restore, as a restore does for new ones)."""
    if tables:
        return []
    out: List[Tuple[str, str]] = []
    for seq in archive_sequences(info, None, selection):
        target = target_schema or seq.schema
        if catalog.reserved_schema(target):
            continue
        stmts = [sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(target)),
                 *schema.free_sequence_statements(seq, target)]
        out.append((f"{target}.{seq.name}",
                    "; ".join(st.as_string(None) for st in stmts)))
    return out


def script_lines(plan: RestorePlan) -> Iterable[str]:
    """The script, line by line (each ends with a newline)."""
    yield SCRIPT_HEADER.format(source=plan.source)
    for tid, why in plan.refused:
        yield f"-- NOT INCLUDED: {_comment(tid)}: {_comment(why)}\n"
    for t in plan.tables:
        yield f"\n-- {t.kind} {_comment(t.target)} (archive table {_comment(t.table_id)})\n"
        yield "BEGIN;\n"
        for _phase, stmt in t.steps:
            yield stmt + ";\n"
        yield "COMMIT;\n"
    fks = [(t, fk) for t in plan.tables for fk in t.foreign_keys]
    if fks:
        yield "\n-- foreign keys, after every table\n"
        for t, (setup, stmt) in fks:
            yield f"{setup};\n{stmt};\n"
    if plan.sequences:
        yield "\n-- free-standing sequences\n"
        for _name, text in plan.sequences:
            yield text + ";\n"


def _comment(text: str) -> str:
    # a name from the archive must not end the comment line
    return text.replace("\r", "\\r").replace("\n", "\\n")


def restore_script(source: Union[str, os.PathLike, IO[bytes]], out: IO[str],
                   **options: Any) -> RestorePlan:
    """Write the SQL a restore of ``source`` would run to create its tables into
    ``out`` (a text stream); options as for :func:`build_plan`.  Returns the plan
    (``refused`` lists the tables left out and why)."""
    plan = build_plan(source, **options)
    for line in script_lines(plan):
        out.write(line)
    return plan


_LIST_PHASES = {"types": "TYPE", "serials": "SEQUENCE", "table": "TABLE",
                "post_data": "CONSTRAINT/INDEX", "sequences": "SEQUENCE SET",
                "comments": "COMMENT"}


def list_lines(plan: RestorePlan) -> Iterable[str]:
    """``pg_restore -l``'s listing: what a restore would do, in order, one a line."""
    info = plan.info.get("info") or {}
    yield f";\n; Archive: {_comment(plan.source)}\n"
    for key, label in (("created", "Created"), ("server_version", "Server version"),
                       ("client_encoding", "Encoding")):
        value = plan.info.get(key) or info.get(key)
        if value:
            yield f"; {label}: {_comment(str(value))}\n"
    yield f"; Tables: {len(plan.tables)}\n;\n"
    n = 0
    for tid, why in plan.refused:
        yield f"; NOT INCLUDED {_comment(tid)}: {_comment(why)}\n"
    for t in plan.tables:
        counts: Dict[str, int] = {}
        for phase, _ in t.steps:
            counts[phase] = counts.get(phase, 0) + 1
        n += 1
        yield f"{n}; {t.kind.upper()} {_comment(t.target)} ({_comment(t.table_id)})\n"
        if t.data:
            n += 1
            rows = "" if t.rows is None else f" ({t.rows} rows)"
            yield f"{n}; TABLE DATA {_comment(t.target)}{rows}\n"
        for phase, label in _LIST_PHASES.items():
            if phase in counts and phase != "table":
                n += 1
                yield f"{n}; {label} {_comment(t.target)} ({counts[phase]})\n"
        for phase in counts:
            if phase not in _LIST_PHASES and phase not in ("schema", "setup"):
                n += 1
                yield f"{n}; {phase.upper()} {_comment(t.target)} ({counts[phase]})\n"
    for t in plan.tables:
        for _setup, _stmt in t.foreign_keys:
            n += 1
            yield f"{n}; FK CONSTRAINT {_comment(t.target)}\n"
    for name, _ in plan.sequences:
        n += 1
        yield f"{n}; SEQUENCE {_comment(name)}\n"


def restore_list(source: Union[str, os.PathLike, IO[bytes]], out: IO[str],
                 **options: Any) -> RestorePlan:
    """Write :func:`list_lines` of ``source`` into ``out``; options as for
    :func:`build_plan`."""
    plan = build_plan(source, **options)
    for line in list_lines(plan):
        out.write(line)
    return plan


__all__ = ["RestorePlan", "SCRIPT_HEADER", "TableScript", "build_plan", "list_lines",
           "restore_list", "restore_script", "script_lines"]
