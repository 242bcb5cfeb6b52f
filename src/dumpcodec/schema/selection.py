"""What a dump takes from a live database, in pg_dump's words.

:class:`Selection` holds pg_dump 17's selection switches -- ``-t`` (tables, with
today's selector forms: see :mod:`.selectors`), ``-n`` / ``-N`` (schemas in / out),
``-T`` (tables out), ``--exclude-table-data`` (definition kept, no rows) and
``--strict-names`` -- and :func:`parse_filter` reads pg_dump's ``--filter`` file
syntax into one.  :func:`resolve_selection` turns it into tables on a connection;
:func:`all_user_tables` is "every table" (the selection of no switch at all).

The rules are pg_dump's:

* with ``-t`` patterns, exactly the tables they match are taken (``-n`` and ``-N``
  have no effect on them); else, with ``-n``, the tables of the matching schemas;
  else every user table (outside ``pg_*`` and ``information_schema``, not a member of
  an extension);
* ``-N`` removes schemas, ``-T`` removes tables, in every case; a partitioned table
  goes with all its partitions;
* an include pattern (``-t``, ``-n``) that matches nothing is reported (in
  :attr:`Resolved.unmatched`; the dump logs it) and the others go on; with
  ``strict_names`` it is an error, and so is a selection that finds no table at all.
  Exclude patterns that match nothing are not reported (as in pg_dump).

Pattern rules are those of ``-t`` (:mod:`.selectors`): ``*``, ``?``, the regular
expression characters ``| ( ) [ ] { } + ^``, double quotes for literal text; an
unquoted name is matched as written, then lower-cased when that finds nothing.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import IO, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

import psycopg

from ..errors import NoMatchError, SelectorError
from .selectors import TableRef, pattern_regex, resolve_selectors, split_pattern

#: filter-file object types and what dumpcodec does with them: the keyword, and the
#: commands it takes (pg_dump's rules: table_data only with exclude)
DUMP_FILTER_TYPES: Dict[str, Tuple[str, ...]] = {
    "table": ("include", "exclude"),
    "table_and_children": ("include", "exclude"),
    "schema": ("include", "exclude"),
    "table_data": ("exclude",),
    "table_data_and_children": ("exclude",),
}

#: what a restore's filter file may say (pg_restore takes table and schema, too)
RESTORE_FILTER_TYPES: Dict[str, Tuple[str, ...]] = {
    "table": ("include", "exclude"),
    "schema": ("include", "exclude"),
}

#: pg_dump and pg_restore know these, dumpcodec (which moves tables) does not
_OTHER_TYPES = ("database", "extension", "foreign_data", "function", "index", "trigger")


@dataclass(frozen=True)
class FilterRule:
    """One line of a filter file: ``include table app.*`` read from ``where``."""
    command: str        # include | exclude
    kind: str           # table | table_and_children | schema | table_data | ...
    pattern: str
    where: str          # "FILE:LINE", for messages

    def __str__(self) -> str:
        return f"{self.command} {self.kind} {self.pattern} ({self.where})"


@dataclass
class Selection:
    """pg_dump's selection switches (see the module docstring).

    ``tables``: ``-t`` selectors; ``schemas``: ``-n`` patterns; ``exclude_tables``:
    ``-T``; ``exclude_schemas``: ``-N``; ``exclude_table_data``: tables whose
    definition is dumped without rows; ``strict_names``: an include pattern that
    matches nothing is an error.  ``labels`` maps a pattern to where it came from (a
    filter file's line), for messages.
    """
    tables: List[str] = field(default_factory=list)
    schemas: List[str] = field(default_factory=list)
    exclude_tables: List[str] = field(default_factory=list)
    exclude_schemas: List[str] = field(default_factory=list)
    exclude_table_data: List[str] = field(default_factory=list)
    strict_names: bool = False
    labels: Dict[str, str] = field(default_factory=dict)

    @property
    def everything(self) -> bool:
        """No include switch: every user table (less what is excluded)."""
        return not self.tables and not self.schemas

    def add_rules(self, rules: Iterable[FilterRule]) -> "Selection":
        """Add filter-file rules (in place; returns self)."""
        for r in rules:
            target = {("include", "table"): self.tables,
                      ("include", "table_and_children"): self.tables,
                      ("exclude", "table"): self.exclude_tables,
                      ("exclude", "table_and_children"): self.exclude_tables,
                      ("include", "schema"): self.schemas,
                      ("exclude", "schema"): self.exclude_schemas,
                      ("exclude", "table_data"): self.exclude_table_data,
                      ("exclude", "table_data_and_children"): self.exclude_table_data,
                      }.get((r.command, r.kind))
            if target is None:
                raise SelectorError(f"{r.where}: '{r.command} {r.kind}' is not supported")
            target.append(r.pattern)
            self.labels.setdefault(r.pattern, f"{r.command} {r.kind} {r.pattern} "
                                              f"({r.where})")
        return self

    def label(self, switch: str, pattern: str) -> str:
        return self.labels.get(pattern) or f"{switch} {pattern}"


# -- the filter file --------------------------------------------------------------------

def parse_filter(text: str, source: str = "-",
                 kinds: Optional[Dict[str, Tuple[str, ...]]] = None) -> List[FilterRule]:
    """The rules of a filter file in pg_dump 17's syntax.

    One rule a line: ``{include|exclude} OBJECT_TYPE PATTERN``; keywords in any case;
    blank lines and lines whose first non-blank character is ``#`` are ignored, and
    ``#`` outside double quotes ends a rule (a comment).  A quoted name may hold
    spaces, ``#``, ``""`` for a quote and, like pg_dump's, span lines; unquoted words
    of a pattern are joined by one space.  ``kinds`` (default
    :data:`DUMP_FILTER_TYPES`): the object types accepted, and with which command.
    Raises :class:`SelectorError` naming ``source`` and the line.
    """
    kinds = DUMP_FILTER_TYPES if kinds is None else kinds
    rules: List[FilterRule] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        lineno = i + 1
        where = f"{source}:{lineno}"
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        words = line.split(None, 2)
        command = words[0].lower()
        if command not in ("include", "exclude"):
            raise SelectorError(f"filter {where}: expected 'include' or 'exclude', "
                                f"not {words[0]!r}")
        if len(words) < 2 or words[1].startswith("#"):
            raise SelectorError(f"filter {where}: missing object type after {command!r}")
        kind = words[1].lower()
        if kind not in kinds:
            if kind in _OTHER_TYPES or kind in DUMP_FILTER_TYPES:
                raise SelectorError(
                    f"filter {where}: object type {kind!r} is not supported here "
                    f"(dumpcodec takes: {', '.join(sorted(kinds))})")
            raise SelectorError(f"filter {where}: unknown object type {words[1]!r}")
        if command not in kinds[kind]:
            raise SelectorError(f"filter {where}: {kind!r} can only be used with "
                                f"{' or '.join(repr(c) for c in kinds[kind])}")
        rest = words[2] if len(words) > 2 else ""
        pattern, i = _read_pattern(rest, lines, i, where)
        if not pattern:
            raise SelectorError(f"filter {where}: missing object name pattern")
        rules.append(FilterRule(command, kind, pattern, where))
    return rules


def _read_pattern(rest: str, lines: List[str], i: int, where: str) -> Tuple[str, int]:
    """The pattern starting at ``rest`` (the remainder of line ``i - 1``): unquoted
    words joined by one space, quoted parts kept as written (they may go on over the
    next lines), up to the end of the line or a ``#`` outside quotes."""
    out: List[str] = []
    space = False
    pos = 0
    while True:
        if pos >= len(rest):
            break
        ch = rest[pos]
        if ch == "#":
            break
        if ch.isspace():
            space = bool(out)
            pos += 1
            continue
        if space:
            out.append(" ")
            space = False
        if ch != '"':
            out.append(ch)
            pos += 1
            continue
        # a quoted part: to the closing quote ('""' is a quote), maybe lines later
        out.append('"')
        pos += 1
        while True:
            if pos >= len(rest):
                if i >= len(lines):
                    raise SelectorError(f"filter {where}: unterminated double quote")
                out.append("\n")
                rest, pos, i = lines[i], 0, i + 1
                continue
            ch = rest[pos]
            pos += 1
            if ch == '"':
                if rest[pos:pos + 1] == '"':
                    out.append('""')
                    pos += 1
                    continue
                out.append('"')
                break
            if ch == "\\" and rest[pos:pos + 1] in ("n", "\\"):
                out.append("\n" if rest[pos] == "n" else "\\")
                pos += 1
                continue
            out.append(ch)
    return "".join(out), i


def read_filter(source: Union[str, os.PathLike, IO[str]],
                kinds: Optional[Dict[str, Tuple[str, ...]]] = None) -> List[FilterRule]:
    """:func:`parse_filter` on a file (a path, ``'-'`` for stdin, or a text stream)."""
    import sys
    if isinstance(source, (str, os.PathLike)):
        if os.fspath(source) == "-":
            return parse_filter(sys.stdin.read(), "stdin", kinds)
        with open(source, encoding="utf-8") as f:
            return parse_filter(f.read(), os.fspath(source), kinds)
    name = getattr(source, "name", None)
    return parse_filter(source.read(), str(name) if name else "stream", kinds)


# -- on a live database -----------------------------------------------------------------

@dataclass
class Resolved:
    """A :class:`Selection` on one database.

    ``tables``: the tables, in order; ``no_data``: ``(schema, name)`` of those dumped
    without rows; ``whole_schemas``: schemas taken whole (their free-standing sequences
    go into the dump); ``excluded``: ``(schema, name)`` the exclusions name (with the
    partitions of a partitioned one); ``unmatched``: include patterns that matched
    nothing (with where they came from).
    """
    tables: List[TableRef]
    no_data: Set[Tuple[str, str]] = field(default_factory=set)
    whole_schemas: List[str] = field(default_factory=list)
    excluded: Set[Tuple[str, str]] = field(default_factory=set)
    unmatched: List[str] = field(default_factory=list)


_USER_TABLES_SQL = """
SELECT n.nspname, c.relname, c.oid, c.relispartition,
       ARRAY(SELECT a.relid::oid FROM pg_catalog.pg_partition_ancestors(c.oid) a
             WHERE a.relid <> c.oid)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND (%(schemas)s::pg_catalog.text[] IS NULL OR n.nspname = ANY(%(schemas)s))
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname
"""


def all_user_tables(conn: psycopg.Connection, schemas: Optional[Sequence[str]] = None,
                    exclude_schemas: Sequence[str] = ()) -> List[TableRef]:
    """Every user table (of ``schemas`` when given, not of ``exclude_schemas``), as
    pg_dump takes them without switches: outside ``pg_*`` and ``information_schema``,
    no table of an extension; a partition whose partitioned ancestor is taken goes
    with it (the dump adds it under its parent)."""
    rows = conn.execute(_USER_TABLES_SQL, {
        "schemas": None if schemas is None else list(schemas)}).fetchall()
    out = set(exclude_schemas)
    rows = [r for r in rows if r[0] not in out]
    oids = {r[2] for r in rows}
    return [TableRef(f"{r[0]}.{r[1]}", r[0], r[1]) for r in rows
            if not (r[3] and oids.intersection(r[4]))]


def _schema_names(conn: psycopg.Connection, pattern: str) -> List[str]:
    parts = split_pattern(pattern)
    if len(parts) != 1:
        raise SelectorError(f"schema pattern {pattern!r}: a schema name has no dotted "
                            f"parts (quote it: '\"a.b\"')")
    text, quoted = parts[0]
    folds = (False, True) if not quoted and text != text.lower() else (False,)
    for fold in folds:
        rows = conn.execute(
            "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname ~ %s AND "
            "nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY 1",
            (pattern_regex(text, quoted, fold),)).fetchall()
        if rows:
            return [r[0] for r in rows]
    return []


_REL_SQL = """
SELECT n.nspname, c.relname, c.relkind, c.oid
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname ~ %(schema)s AND c.relname ~ %(name)s
  AND (%(visible)s = false OR pg_catalog.pg_table_is_visible(c.oid))
"""


def _tables_matching(conn: psycopg.Connection, pattern: str) -> Set[Tuple[str, str]]:
    """Tables an exclusion pattern names, with every partition of a partitioned one
    (as ``-t`` does: one part matches tables visible through the search_path)."""
    parts = split_pattern(pattern)
    if len(parts) > 2:
        raise SelectorError(f"pattern {pattern!r}: too many dotted parts (expected "
                            f"schema.table)")
    folds = (False, True) if any(not q and t != t.lower() for t, q in parts) else (False,)
    rows: List[tuple] = []
    for fold in folds:
        if len(parts) == 2:
            params = {"schema": pattern_regex(*parts[0], fold),
                      "name": pattern_regex(*parts[1], fold), "visible": False}
        else:
            params = {"schema": ".*", "name": pattern_regex(*parts[0], fold),
                      "visible": True}
        rows = conn.execute(_REL_SQL, params).fetchall()
        if rows:
            break
    out = {(r[0], r[1]) for r in rows}
    for r in rows:
        if r[2] == "p":
            out.update(conn.execute(
                "SELECT n.nspname, c.relname FROM pg_catalog.pg_partition_tree(%s::oid"
                "::pg_catalog.regclass) t JOIN pg_catalog.pg_class c ON c.oid = t.relid "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace",
                (r[3],)).fetchall())
    return out


def _note_unmatched(selection: Selection, label: str, out: List[str]) -> None:
    if selection.strict_names:
        raise NoMatchError(f"no matching tables were found for {label}")
    out.append(label)


def resolve_selection(conn: psycopg.Connection, selection: Optional[Selection],
                      id_map: Optional[Dict[str, Tuple[str, str]]] = None) -> Resolved:
    """The tables ``selection`` takes on ``conn`` (None: every user table), by the
    rules of the module docstring.  Raises :class:`SelectorError` for a bad pattern,
    :class:`NoMatchError` when nothing at all is selected or, with ``strict_names``,
    when an include pattern matches nothing."""
    sel = selection if selection is not None else Selection()
    unmatched: List[str] = []
    excluded_schemas: List[str] = []
    for pat in sel.exclude_schemas:
        excluded_schemas += _schema_names(conn, pat)
    whole: List[str] = []
    if sel.tables:
        refs: List[TableRef] = []
        seen: Set[Tuple[str, str]] = set()
        for pat in sel.tables:
            try:
                found = resolve_selectors(conn, [pat], id_map=id_map)
            except NoMatchError:
                _note_unmatched(sel, sel.label("-t", pat), unmatched)
                continue
            for ref in found:
                if (ref.schema, ref.name) not in seen:
                    seen.add((ref.schema, ref.name))
                    refs.append(ref)
        # a selector naming a whole schema takes its free sequences too
        whole = _whole_schemas(conn, sel.tables)
    else:
        schemas: Optional[List[str]] = None
        if sel.schemas:
            schemas = []
            for pat in sel.schemas:
                names = _schema_names(conn, pat)
                if not names:
                    _note_unmatched(sel, sel.label("-n", pat), unmatched)
                schemas += [n for n in names if n not in schemas]
        refs = all_user_tables(conn, schemas, excluded_schemas) if schemas != [] else []
        whole = [s for s in (schemas if schemas is not None else
                             sorted({r.schema for r in refs}))
                 if s not in excluded_schemas]
    excluded: Set[Tuple[str, str]] = set()
    for pat in sel.exclude_tables:
        excluded |= _tables_matching(conn, pat)
    refs = [r for r in refs if (r.schema, r.name) not in excluded]
    no_data: Set[Tuple[str, str]] = set()
    for pat in sel.exclude_table_data:
        no_data |= _tables_matching(conn, pat)
    if not refs:
        what = "; ".join(unmatched) if unmatched else "the selection"
        raise NoMatchError(f"no matching tables were found ({what})")
    return Resolved(refs, no_data, whole, excluded, unmatched)


def _whole_schemas(conn: psycopg.Connection, selectors: Sequence[str]) -> List[str]:
    """Which selectors name a schema (no dot, no wildcard, a schema of that name)."""
    names = []
    for s in selectors:
        parts = split_pattern(s)
        if len(parts) == 1 and (parts[0][1] or not re.search(r"[*?|()\[\]{}+^]", s)):
            names.append(parts[0][0])
    if not names:
        return []
    rows = conn.execute("SELECT nspname FROM pg_catalog.pg_namespace "
                        "WHERE nspname = ANY(%s) ORDER BY 1", (names,)).fetchall()
    return [r[0] for r in rows]


def selection_from_args(tables: Sequence[str] = (), schemas: Sequence[str] = (),
                        exclude_tables: Sequence[str] = (),
                        exclude_schemas: Sequence[str] = (),
                        exclude_table_data: Sequence[str] = (),
                        filters: Sequence[Union[str, os.PathLike, IO[str]]] = (),
                        strict_names: bool = False,
                        kinds: Optional[Dict[str, Tuple[str, ...]]] = None) -> Selection:
    """A :class:`Selection` from switches and filter files (read in the order given)."""
    sel = Selection(list(tables), list(schemas), list(exclude_tables),
                    list(exclude_schemas), list(exclude_table_data), strict_names)
    for f in filters:
        sel.add_rules(read_filter(f, kinds))
    return sel


__all__ = ["DUMP_FILTER_TYPES", "RESTORE_FILTER_TYPES", "FilterRule", "Resolved",
           "Selection", "all_user_tables", "parse_filter", "read_filter",
           "resolve_selection", "selection_from_args"]
