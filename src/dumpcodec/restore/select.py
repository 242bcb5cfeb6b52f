"""Which tables of an archive a restore takes, where they go, and the structural rules
an archive must keep before anything is written.

An archive is untrusted input (docs/RELIABILITY.md, "Untrusted archives").  Before a
connection writes anything:

* every table id equals its definition's ``schema.name`` (an opaque DaCHS-style id
  holds a ``#``), ids are unique, and no two tables go to the same target
  (:func:`check_archive`: otherwise the whole archive is refused);
* per table (:func:`check_item`, a failure refuses that table only): nothing is
  created in or written to a reserved schema (``pg_*``, ``information_schema``); the
  header's columns are columns of the definition, each once; a partition's or
  child's parent, and the types the table needs, come with the archive (or exist,
  with an option the user types).

DaCHS archives carry no definitions: only the ids the caller maps (``definitions``,
``--table-map``) are restored; the others are skipped with a warning.
"""
from __future__ import annotations

import fnmatch
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from .. import schema
from ..archive import TableInfo
from ..errors import RestoreError, SelectorError
from ..schema.catalog import reserved_schema


#: names a restore keeps for itself in the target schema: its state table, and the
#: prefix of its staging tables and their keys and indexes (restore/staged.py)
STATE_TABLE = "dumpcodec_restore_state"
STAGE_PREFIX = "dumpcodec_stage_"


class Item:
    """One table of the archive, as restore needs it.

    ``definition`` is the table's ``schema.TableDef`` (None for DaCHS).  One built from
    the archive is kept only while something else holds it (the table being
    restored) and rebuilt from the archive's text when asked for again: a restore of
    10,000 tables held all of them (about 8 KB each) from start to end.  ``source``,
    ``qualified`` and ``parents`` (what selection and ordering ask of every table) are
    kept."""

    def __init__(self, table_id: str, format: str, columns: Optional[List[str]],
                 definition: Any, extra: Dict[str, Any], info: TableInfo):
        self.table_id = table_id
        self.format = format
        self.columns = columns
        self.extra = extra
        self.info = info
        self._rebuild = False
        self._ref: Optional[Callable[[], Any]] = None
        self.definition = definition

    @property
    def definition(self) -> Any:
        """schema.TableDef or None (DaCHS)."""
        tdef = self._ref() if self._ref is not None else None
        if tdef is None and self._rebuild:
            tdef = schema.TableDef.from_json(self.info.definition)
            self._ref = weakref.ref(tdef)
        return tdef

    @definition.setter
    def definition(self, tdef: Any) -> None:
        self._rebuild = False
        self._ref = (lambda: tdef) if tdef is not None else None
        self._note(tdef)

    def _from_archive(self, tdef: Any) -> None:
        # ``tdef`` was built from ``info.definition`` (and so passed its checks):
        # held weakly from now on, rebuilt from the archive's text when needed again
        self._ref = weakref.ref(tdef)
        self._rebuild = True
        self._note(tdef)

    def _note(self, d: Any) -> None:
        self.source: Optional[Tuple[str, str]] = (d.schema, d.name) if d is not None \
            else None
        #: (schema, name) of the tables it attaches to: its partitioned parent, or the
        #: parents it INHERITS from (the dump writes them before it)
        self.parents: List[Tuple[str, str]] = [] if d is None else (
            [(d.parent_schema, d.parent_name)] if d.parent_name and d.parent_schema
            else []) + [(p.schema, p.name) for p in d.inherits]

    @property
    def qualified(self) -> str:
        return "{}.{}".format(*self.source) if self.source is not None else self.table_id

    def __repr__(self) -> str:
        return f"Item({self.table_id!r}, {self.format!r}, {self.columns!r})"


def item_from(info: TableInfo) -> Item:
    item = Item(table_id=info.table_id, format=info.format,
                columns=list(info.columns) if info.columns else None,
                definition=None, extra=info.extra, info=info)
    if info.has_definition:
        # built (and checked) now, so that a bad definition fails here as before
        item._from_archive(schema.TableDef.from_json(info.definition))
    return item


# -- selection --------------------------------------------------------------------------

def names(it: Item) -> Set[str]:
    """What a ``tables`` pattern is matched against: the schema and table name of its
    definition (which says where it goes), and the id of a table without one (a
    DaCHS table, which goes only where the user maps it).  An opaque id of a table
    with a definition is not matched: it would let an archive call the user's table
    by a harmless name."""
    if it.source is None:
        return {it.table_id}
    return {"{}.{}".format(*it.source), it.source[1]}


def matching(it: Item, tables: Sequence[str]) -> List[str]:
    ns = names(it)
    return [pat for pat in tables if any(fnmatch.fnmatchcase(n, pat) for n in ns)]


def select(items: List[Item], tables: Optional[Sequence[str]]) -> List[Item]:
    """The items some pattern matches; a pattern that matches nothing is an error."""
    if not tables:
        return items
    out = []
    used: Set[str] = set()
    for it in items:
        hits = matching(it, tables)
        if hits:
            used.update(hits)
            out.append(it)
    unknown = [p for p in tables if p not in used]
    if unknown:
        hints = [f"{p} is the id of table {it.qualified}, which is selected by its name"
                 for p in unknown for it in items
                 if it.source is not None and fnmatch.fnmatchcase(it.table_id, p)]
        raise SelectorError(f"no table in the archive matches {', '.join(unknown)}"
                            + (f" ({'; '.join(hints)})" if hints else ""))
    return out


def wanted(item: Item, tables: Optional[Sequence[str]]) -> bool:
    """One-pass (pipe) restores decide table by table: does any pattern match?"""
    return not tables or bool(matching(item, tables))


# -- targets ------------------------------------------------------------------------------

def target_name(item: Item, target_schema: Optional[str],
                definitions: Dict[str, Any]) -> Tuple[str, str]:
    """(schema, name) the table goes to, as :func:`target_of` says, without building
    its definition."""
    described = definitions.get(item.table_id)
    if described is not None:
        if isinstance(described, str):
            schema_, _, name = described.rpartition(".")
            if not schema_:
                schema_ = "public"
            return target_schema or schema_, name
        return target_schema or described.schema, described.name
    if item.source is not None:
        return target_schema or item.source[0], item.source[1]
    raise Unmapped(
        f"{item.table_id}: not restored: the archive has no definition for this table "
        f"(a DaCHS dump); map it to an existing table with --table-map "
        f"'{item.table_id}=schema.table' (definitions={{id: 'schema.table'}})")


def target_of(item: Item, target_schema: Optional[str],
              definitions: Dict[str, Any]) -> Tuple[str, str, Any]:
    """(schema, name, definition or None) the table goes to.

    A table without a definition (DaCHS) goes only where ``definitions`` maps it;
    otherwise :class:`Unmapped` is raised (the caller skips it).
    """
    schema_, name = target_name(item, target_schema, definitions)
    described = definitions.get(item.table_id)
    if described is not None and not isinstance(described, str):
        return schema_, name, described
    return schema_, name, item.definition


class Unmapped(RestoreError):
    """A table without definition that the caller did not map: skipped."""


# -- the rules ----------------------------------------------------------------------------

def opaque_id(table_id: str) -> bool:
    """A DaCHS-style id (``resource#table``), which names no table by itself."""
    return "#" in table_id


def check_archive(items: Iterable[Item], target_schema: Optional[str],
                  definitions: Dict[str, Any]) -> None:
    """Archive-wide rules: raise :class:`RestoreError` (nothing is restored)."""
    seen: Dict[str, Item] = {}
    targets: Dict[Tuple[str, str], str] = {}
    for it in items:
        if it.table_id in seen:
            raise RestoreError(f"the archive lists table id {it.table_id!r} twice; "
                               f"refusing it (one table's rows could go into another)")
        seen[it.table_id] = it
        if it.source is not None and it.table_id != it.qualified \
                and not opaque_id(it.table_id):
            raise RestoreError(
                f"table id {it.table_id!r} does not match its definition, which is "
                f"table {it.qualified}; refusing the archive")
        try:
            target = target_name(it, target_schema, definitions)
        except Unmapped:
            continue
        if target in targets:
            raise RestoreError(f"tables {targets[target]!r} and {it.table_id!r} of the "
                               f"archive both go to {target[0]}.{target[1]}; refusing "
                               f"the archive")
        targets[target] = it.table_id


def check_item(item: Item, schema_: str, name: str, tdef: Any, *,
               restored: Set[Tuple[str, str]], allow_attach: bool) -> None:
    """Per-table rules, before anything is written; raise :class:`RestoreError`.

    ``restored``: (schema, name) of the tables this restore creates or loads, as the
    archive names them (a parent must be one of them unless ``allow_attach``).
    """
    tid = item.table_id
    if reserved_schema(schema_):
        raise RestoreError(f"{tid}: refused: schema {schema_} is reserved for the "
                           f"server; nothing is restored into it")
    if not name:
        raise RestoreError(f"{tid}: empty table name")
    if name == STATE_TABLE or name.startswith(STAGE_PREFIX):
        raise RestoreError(f"{tid}: refused: the name {name} is kept for the restore's "
                           f"own state and staging tables")
    if tdef is None:
        return
    for x in list(tdef.indexes) + list(tdef.constraints):
        if x.name.startswith(STAGE_PREFIX):
            # a staged table's keys and indexes are built under such names
            raise RestoreError(f"{tid}: refused: the name {x.name} (an index or "
                               f"constraint) is kept for the restore's staging tables")
    for ty in tdef.types:
        if reserved_schema(ty.schema) and ty.kind not in ("base", "extension"):
            raise RestoreError(f"{tid}: refused: type {ty.schema}.{ty.name} would be "
                               f"created in a schema reserved for the server")
    for s in tdef.sequences:
        if reserved_schema(s.schema):
            raise RestoreError(f"{tid}: refused: sequence {s.schema}.{s.name} is in a "
                               f"schema reserved for the server")
    if item.columns is not None:
        copyable = set(schema.copy_columns(tdef))
        strange = [c for c in item.columns if c not in copyable]
        if strange or len(set(item.columns)) != len(item.columns):
            raise RestoreError(
                f"{tid}: refused: the data's column list {item.columns} does not match "
                f"the definition's columns {sorted(copyable)}")
    for parent in item.parents:
        if reserved_schema(parent[0]):
            raise RestoreError(f"{tid}: refused: its parent {parent[0]}.{parent[1]} is "
                               f"in a schema reserved for the server")
        if parent not in restored and not allow_attach:
            raise RestoreError(
                f"{tid}: not restored: it would attach to {parent[0]}.{parent[1]} (as a "
                f"partition or an inheritance child), which this restore does not "
                f"restore; restore the parent too, or allow attaching to an existing "
                f"table with --allow-attach")
