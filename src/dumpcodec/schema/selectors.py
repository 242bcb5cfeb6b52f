"""Resolve the ways users name tables into exact (schema, table) pairs.

Selector forms, tried in this order:

1. an opaque id present in ``id_map`` (e.g. DaCHS's ``rd-id#table-id``);
2. a pattern as pg_dump's ``-t`` takes it (psql's pattern rules): ``*`` any run,
   ``?`` one character, and the regular-expression characters ``| ( ) [ ] { } + ^``
   keep their meaning (``public.t*``, ``*.log_?``, ``(east|west)*gsm``); without a
   schema part only tables visible through the search_path match;
3. ``schema.table``;
4. a bare name: a table visible through the search_path, else a schema (all its tables).
   A name that is both is taken as the table.

Double quotes keep dots and wildcard characters literal (``"my.schema"."t*"``).
Unquoted names are matched as written; when that finds nothing and the name has
capitals, the lower-cased form is tried (SQL folds unquoted names to lower case).

Partitioned tables resolve to the partitioned parent; a pattern or schema that also
matches its partitions returns the parent only (:func:`partition_leaves` lists the
leaves).  Views, materialized views, sequences and foreign tables are an error naming
what was found, never a silent skip.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import psycopg

from ..errors import NoMatchError, SelectorError

_KIND_NAMES = {"r": "table", "p": "partitioned table", "v": "view",
               "m": "materialized view", "S": "sequence", "f": "foreign table",
               "i": "index", "I": "partitioned index", "c": "composite type",
               "t": "TOAST table"}


@dataclass(frozen=True)
class TableRef:
    """A resolved table: the id the user named it by, and its exact name."""
    table_id: str
    schema: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def _split(selector: str) -> List[Tuple[str, bool]]:
    """Split on unquoted dots into (text, quoted) parts; '""' inside quotes is '"'."""
    parts: List[Tuple[str, bool]] = []
    buf: List[str] = []
    quoted = in_quotes = False
    i = 0
    while i < len(selector):
        ch = selector[i]
        if in_quotes:
            if ch == '"':
                if selector[i + 1:i + 2] == '"':
                    buf.append('"')
                    i += 1
                else:
                    in_quotes = False
            else:
                buf.append(ch)
        elif ch == '"':
            in_quotes = quoted = True
        elif ch == ".":
            parts.append(("".join(buf), quoted))
            buf, quoted = [], False
        else:
            buf.append(ch)
        i += 1
    if in_quotes:
        raise SelectorError(f"selector {selector!r}: unterminated double quote")
    parts.append(("".join(buf), quoted))
    if any(not text for text, _ in parts):
        raise SelectorError(f"selector {selector!r}: empty name part")
    return parts


#: characters of an unquoted pattern that act as in a regular expression (as psql's
#: patterns have them; ``*``, ``?`` and ``.`` are translated, ``$`` stays literal)
_REGEX_CHARS = frozenset("|()[]{}+^")


def _has_wildcard(parts: Sequence[Tuple[str, bool]]) -> bool:
    return any(not q and any(ch in "*?" or ch in _REGEX_CHARS for ch in t)
               for t, q in parts)


def _regex(text: str, quoted: bool, fold: bool) -> str:
    if quoted:
        return "^" + re.escape(text) + "$"
    if fold:
        text = text.lower()
    out = []
    for ch in text:
        out.append(".*" if ch == "*" else "." if ch == "?" else
                   ch if ch in _REGEX_CHARS else re.escape(ch))
    regex = "(" + "".join(out) + ")" if any(ch in _REGEX_CHARS for ch in text) \
        else "".join(out)
    try:
        # checked here: a bad one would abort the caller's transaction on the server
        re.compile(regex)
    except re.error as exc:
        raise SelectorError(f"pattern {text!r} is not a valid regular expression: {exc}") \
            from None
    return "^" + regex + "$"


def split_pattern(pattern: str) -> List[Tuple[str, bool]]:
    """``pattern`` split on unquoted dots into ``(text, quoted)`` parts (see the
    module docstring for the quoting rules)."""
    return _split(pattern)


def pattern_regex(text: str, quoted: bool, fold: bool = False) -> str:
    """The anchored regular expression (PostgreSQL's ``~``) for one part of a
    pattern; ``fold`` lower-cases an unquoted part."""
    return _regex(text, quoted, fold)


_FIND_SQL = """
SELECT n.nspname, c.relname, c.relkind, c.relispartition,
       ARRAY(SELECT a.relid::oid FROM pg_catalog.pg_partition_ancestors(c.oid) a
             WHERE a.relid <> c.oid), c.oid
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND n.nspname ~ %(schema)s AND c.relname ~ %(name)s
  AND (%(visible)s = false OR pg_catalog.pg_table_is_visible(c.oid))
ORDER BY n.nspname, c.relname
"""


def _find(conn, schema_re: str, name_re: str, visible: bool):
    return conn.execute(_FIND_SQL, {"schema": schema_re, "name": name_re,
                                    "visible": visible}).fetchall()


def _describe(rows) -> str:
    return ", ".join(f"{_KIND_NAMES.get(r[2], r[2])} {r[0]}.{r[1]}" for r in rows[:10]) + (
        f" and {len(rows) - 10} more" if len(rows) > 10 else "")


def _tables_only(selector: str, rows, drop_partitions: bool) -> List[Tuple[str, str]]:
    tables = [r for r in rows if r[2] in ("r", "p")]
    if not tables:
        if rows:
            raise SelectorError(f"selector {selector!r} names no table: it matches "
                                f"{_describe(rows)}")
        raise NoMatchError(f"selector {selector!r} matches nothing")
    if drop_partitions:
        # A partition whose ancestor is also selected travels with that ancestor.
        oids = {r[5] for r in tables}
        tables = [r for r in tables if not (r[3] and oids.intersection(r[4]))]
    return [(r[0], r[1]) for r in tables]


def _resolve_one(conn, selector: str) -> List[Tuple[str, str]]:
    parts = _split(selector)
    if len(parts) > 2:
        raise SelectorError(f"selector {selector!r}: too many dotted parts (expected "
                            f"schema.table)")
    wildcard = _has_wildcard(parts)
    can_fold = any(not q and t != t.lower() for t, q in parts)
    for fold in ((False, True) if can_fold else (False,)):
        if len(parts) == 2:
            rows = _find(conn, _regex(*parts[0], fold), _regex(*parts[1], fold), False)
        else:
            rows = _find(conn, ".*", _regex(*parts[0], fold), True)
            if not wildcard and not any(r[2] in ("r", "p") for r in rows):
                # Not a visible table: maybe a schema name.
                nsp = parts[0][0].lower() if fold and not parts[0][1] else parts[0][0]
                srows = _find(conn, "^" + re.escape(nsp) + "$", ".*", False)
                exists = conn.execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE "
                                      "nspname = %s", (nsp,)).fetchone()
                if exists:
                    if not any(r[2] in ("r", "p") for r in srows):
                        raise SelectorError(f"selector {selector!r} names schema {nsp!r}, "
                                            f"which has no tables")
                    return _tables_only(selector, srows, True)
        if rows:
            return _tables_only(selector, rows, wildcard)
    raise NoMatchError(f"selector {selector!r} matches nothing")


def resolve_selectors(conn: psycopg.Connection, selectors: Sequence[str],
                      id_map: Optional[Dict[str, Tuple[str, str]]] = None) -> List[TableRef]:
    """Resolve each selector (see the module docstring); order kept, duplicates dropped.

    ``table_id`` is the selector itself for ``id_map`` entries, else ``schema.table``.
    """
    out: List[TableRef] = []
    seen = set()
    for sel in selectors:
        if not isinstance(sel, str) or not sel.strip():
            raise SelectorError(f"empty selector {sel!r}")
        if id_map and sel in id_map:
            schema, name = id_map[sel]
            rows = _find(conn, "^" + re.escape(schema) + "$", "^" + re.escape(name) + "$",
                         False)
            try:
                found = _tables_only(sel, rows, False)
            except SelectorError as exc:
                raise type(exc)(f"{exc} (id_map maps it to {schema}.{name})") from None
            refs = [TableRef(sel, s, n) for s, n in found]
        else:
            refs = [TableRef(f"{s}.{n}", s, n) for s, n in _resolve_one(conn, sel)]
        for ref in refs:
            if (ref.schema, ref.name) not in seen:
                seen.add((ref.schema, ref.name))
                out.append(ref)
    return out


def partition_leaves(conn: psycopg.Connection, schema: str, name: str) -> List[TableRef]:
    """The leaf partitions under ``schema.name`` (the table itself if not partitioned)."""
    row = conn.execute("SELECT c.oid, c.relkind FROM pg_catalog.pg_class c JOIN "
                       "pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                       "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
                       (schema, name)).fetchone()
    if row is None:
        raise SelectorError(f"no table {schema}.{name}")
    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_catalog.pg_partition_tree(%s::oid::regclass) t "
        "JOIN pg_catalog.pg_class c ON c.oid = t.relid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE t.isleaf AND c.relkind = 'r' ORDER BY n.nspname, c.relname",
        (row[0],)).fetchall()
    if not rows and row[1] == "r":   # a plain table is not in any partition tree
        rows = [(schema, name)]
    return [TableRef(f"{s}.{n}", s, n) for s, n in rows]
