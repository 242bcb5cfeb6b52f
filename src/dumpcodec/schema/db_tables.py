"""The live tables that ids name, checked against definitions the caller keeps.

DaCHS's ``iterDbTables`` and ``getTablesForIds`` under PEP 8 names:

* :func:`iter_db_tables` -- an object id naming a table or a whole schema yields the
  live definitions of its tables (a :class:`~.model.TableDef` passed in is yielded as
  it is);
* :func:`get_tables_for_ids` -- every id must name exactly one table, and, where the
  caller gives a definition for it (its own, or an archive's), the live table must
  match it; otherwise one :class:`~dumpcodec.errors.SchemaError` lists every problem.
  Use it before a dump to validate a selection, or before loading into existing tables.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import psycopg

from ..errors import SchemaError, SelectorError
from .capture import capture_table
from .compare import compare
from .model import TableDef
from .selectors import resolve_selectors

IdMap = Optional[Dict[str, Tuple[str, str]]]


def iter_db_tables(conn: psycopg.Connection, object_id: Union[str, TableDef],
                   id_map: IdMap = None) -> Iterator[TableDef]:
    """The live definitions of the tables ``object_id`` names: a table
    (``schema.table``, a name visible through the search_path, an ``id_map`` id), a
    schema (all its tables), or a pattern (:mod:`.selectors`).  A ``TableDef`` is
    yielded as it is.  Raises :class:`SelectorError` when it names no table."""
    if isinstance(object_id, TableDef):
        yield object_id
        return
    for ref in resolve_selectors(conn, [object_id], id_map=id_map):
        yield capture_table(conn, ref.schema, ref.name)


def _as_definitions(definitions: Any) -> Mapping[str, Any]:
    """A mapping ``{id: TableDef or its JSON}``, or an archive reader (its tables'
    stored definitions)."""
    if definitions is None:
        return {}
    if hasattr(definitions, "tables") and not isinstance(definitions, Mapping):
        return {t.table_id: t.definition for t in definitions.tables()
                if t.definition is not None}
    return definitions


def get_tables_for_ids(conn: psycopg.Connection, ids: Sequence[Union[str, TableDef]],
                       definitions: Any = None, *,
                       id_map: IdMap = None) -> List[TableDef]:
    """The live definitions of the tables ``ids`` name, in order, validated.

    Each id must name exactly one table (``schema.table``, a visible name, an
    ``id_map`` id such as DaCHS's ``rd#table``; a ``TableDef`` is taken as it is, as
    DaCHS takes table instances).  ``definitions``: ``{id: TableDef or its JSON}``
    the live tables must match, or an archive reader (``open_dump(...)``: its stored
    definitions); ids without one are only resolved.  Column order differences count
    (a positional load depends on them).  Raises :class:`SchemaError` listing every
    id that does not resolve and every difference, all at once.
    """
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"ids must be a list of table ids, not the string {ids!r}")
    wanted = _as_definitions(definitions)
    out: List[TableDef] = []
    problems: List[str] = []
    for tid in ids:
        if isinstance(tid, TableDef):
            out.append(tid)
            continue
        try:
            refs = resolve_selectors(conn, [tid], id_map=id_map)
        except SelectorError as exc:
            problems.append(str(exc))
            continue
        if len(refs) != 1:
            problems.append(f"{tid!r} names {len(refs)} tables "
                            f"({', '.join(r.qualified for r in refs[:5])}"
                            f"{', ...' if len(refs) > 5 else ''}), not one")
            continue
        live = capture_table(conn, refs[0].schema, refs[0].name)
        out.append(live)
        expected = wanted.get(tid)
        if expected is None:
            continue
        if not isinstance(expected, TableDef):
            expected = TableDef.from_json(expected)
        cmp = compare(expected, live)
        diffs = [str(d) for d in cmp.differences]
        if not cmp.order_matches:
            diffs.append("the columns are in another order")
        if diffs:
            problems.append(f"{tid}: the live table {live.schema}.{live.name} differs "
                            f"from its definition: " + "; ".join(diffs))
    if problems:
        raise SchemaError(f"{len(problems)} of {len(ids)} table id(s) do not hold: "
                          + " | ".join(problems))
    return out


__all__ = ["get_tables_for_ids", "iter_db_tables"]
