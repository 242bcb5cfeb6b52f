"""Compare a table definition (from a dump) with a live table, precisely.

:func:`compare` lists every difference a user needs to decide what to do, and says for
each whether it makes a binary COPY of the dump's column list into the live table wrong
(``blocks_copy``).  The rule is what binary COPY actually does: it applies no casts, so a
different type (int4 vs int8, timestamp vs timestamptz) is wrong even when the bytes
happen to load; but the receive functions apply the *live* column's typmod, so a
typmod that only widens (varchar(20) into varchar(40), numeric(12,2) into
numeric(14,2), timestamp(3) into timestamp(6)) loads exactly and does not block.
Column *order* does not block either: COPY is always issued with the explicit column
list (:func:`copy_columns`); ``Comparison.order_matches`` says whether a positional COPY
(no column list, as old DaCHS dumps do) would also line up.

Type changes that lose nothing (int2 -> int4 -> int8, float4 -> float8, int -> numeric
with enough digits, varchar -> text, typmod widenings) are flagged ``widening`` so the
restore layer can re-encode through the codec; anything else (narrowing, timestamp ->
timestamptz, text -> varchar) is refused up front.

Owner and privileges are not compared: they differ between clusters as a rule (the
restoring role owns what it creates) and a restore sets them only on request.

User-defined types, foreign-key targets and relative names: an object in the table's
own schema is compared relative to that schema, so a table restored into another
schema (with its types, see :mod:`.ddl`) compares equal to its definition.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, List, Optional

from .model import (ColumnDef, ConstraintDef, Grant, IndexDef, PolicyDef, RelationName,
                    StatisticsDef, StorageParam, TableDef, TriggerDef, TypeDef)


@dataclass
class Difference:
    """One difference between the expected definition and the live table."""
    kind: str            # 'missing_column', 'type', 'typmod', 'extra_index', ...
    object: str          # the column, constraint, index or type it concerns
    expected: Any
    actual: Any
    blocks_copy: bool
    widening: bool = False   # column type/typmod differences: a lossless widening

    def __str__(self) -> str:
        what = self.kind.replace("_", " ")
        text = f"{what} {self.object}: expected {_show(self.expected)}, found " \
               f"{_show(self.actual)}"
        notes = []
        if self.blocks_copy:
            notes.append("blocks binary COPY")
        if self.kind in ("type", "typmod"):
            notes.append("widening: re-encode possible" if self.widening
                         else "not a widening: refused")
        return text + (f" ({'; '.join(notes)})" if notes else "")


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return repr(value) if isinstance(value, str) else str(value)


@dataclass
class Comparison:
    """All differences, and what they mean for loading data."""
    expected: TableDef
    live: TableDef
    differences: List[Difference] = field(default_factory=list)
    order_matches: bool = True

    @property
    def equal(self) -> bool:
        return not self.differences

    @property
    def copy_compatible(self) -> bool:
        """A binary COPY of ``copy_columns(expected)`` into the live table is exact."""
        return not any(d.blocks_copy for d in self.differences)

    @property
    def narrowing(self) -> List[Difference]:
        """Column type/typmod differences that are not lossless widenings."""
        return [d for d in self.differences
                if d.kind in ("type", "typmod") and not d.widening]

    @property
    def widened_columns(self) -> List[str]:
        return [d.object for d in self.differences
                if d.kind in ("type", "typmod") and d.widening]

    @property
    def can_map_by_name(self) -> bool:
        """Every copied column exists live with the same type or a lossless widening,
        and every live column left out can take its default: the restore can load by
        re-encoding rows through the codec (or straight, when ``copy_compatible``)."""
        for d in self.differences:
            if d.kind in ("missing_column",) and d.blocks_copy:
                return False
            if d.kind in ("type", "typmod") and not d.widening:
                return False
            if d.kind in ("extra_column", "generated") and d.blocks_copy:
                return False
        return True

    def by_kind(self, kind: str) -> List[Difference]:
        return [d for d in self.differences if d.kind == kind]

    def __str__(self) -> str:
        head = f"{self.live.schema}.{self.live.name} against its definition " \
               f"{self.expected.schema}.{self.expected.name}: "
        if not self.differences:
            return head + "no differences"
        lines = [head + f"{len(self.differences)} difference(s)"
                 + ("" if self.copy_compatible else ", binary COPY not possible")]
        lines += [f"  - {d}" for d in self.differences]
        return "\n".join(lines)


# -- types and widening ---------------------------------------------------------------

def _rel_schema(schema: str, table_schema: str) -> Optional[str]:
    """None stands for 'the table's own schema'."""
    return None if schema == table_schema else schema


def same_type(e: ColumnDef, e_schema: str, l: ColumnDef, l_schema: str) -> bool:
    """The same type (ignoring typmod); user types by name, relative to the table."""
    if e.is_array != l.is_array:
        return False
    if e.builtin and l.builtin:
        return e.type_oid == l.type_oid
    return (e.builtin == l.builtin and e.type_elem == l.type_elem
            and _rel_schema(e.type_schema, e_schema) == _rel_schema(l.type_schema, l_schema))


_INT_DIGITS = {"int2": 5, "int4": 10, "int8": 19}
_WIDER = {("int2", "int4"), ("int2", "int8"), ("int4", "int8"), ("float4", "float8"),
          ("varchar", "text")}
_TIME_TYPES = ("timestamp", "timestamptz", "time", "timetz")


def _numeric_mod(typmod: int):
    if typmod < 4:
        return None
    m = typmod - 4
    return (m >> 16) & 0xFFFF, ((m & 0x7FF) ^ 1024) - 1024


def typmod_widening(elem: str, old: int, new: int) -> bool:
    """Whether values of ``elem(old)`` always fit ``elem(new)`` unchanged."""
    if old == new or new == -1 and elem in ("varchar", "bpchar", "numeric", "varbit"):
        return True
    if elem in ("varchar", "bpchar", "varbit"):
        return old != -1 and new >= old
    if elem == "numeric":
        o, n = _numeric_mod(old), _numeric_mod(new)
        if o is None or n is None:
            return False
        return n[1] == o[1] and n[0] >= o[0]
    if elem in _TIME_TYPES:
        return (6 if new == -1 else new) >= (6 if old == -1 else old)
    return False


def type_widening(e: ColumnDef, l: ColumnDef) -> bool:
    """A lossless change of (builtin) type, e.g. int4 -> int8, varchar(n) -> text."""
    if not (e.builtin and l.builtin and e.is_array == l.is_array
            and e.type_schema == l.type_schema == "pg_catalog"):
        return False
    a, b = e.type_elem, l.type_elem
    if (a, b) in _WIDER:
        return True
    if a in _INT_DIGITS and b == "numeric":
        mod = _numeric_mod(l.typmod)
        return mod is None or (mod[0] - mod[1] >= _INT_DIGITS[a])
    return False


# -- the comparison -------------------------------------------------------------------

def _copy_names(t: TableDef) -> List[str]:
    return [c.name for c in t.columns if c.generated is None]


def _insertable_without_value(c: ColumnDef) -> bool:
    return (not c.not_null or c.default is not None or c.identity is not None
            or c.generated is not None)


def _norm_constraint(c: ConstraintDef, table_schema: str) -> dict:
    d = dataclasses.asdict(c)
    d.pop("name")
    if d["ref_schema"] is not None:
        d["ref_schema"] = _rel_schema(d["ref_schema"], table_schema)
    return d


def _norm_index(i: IndexDef) -> dict:
    d = dataclasses.asdict(i)
    d.pop("name")
    return d


def _plain(value: Any) -> Any:
    """A definition's field as shown in a difference (grants and parameters as text)."""
    if isinstance(value, list):
        return ", ".join(map(str, (_plain(v) for v in value))) or "none"
    if isinstance(value, StorageParam):
        return f"{value.name}={value.value}"
    if isinstance(value, Grant):
        return (f"{value.privilege} to {value.grantee or 'PUBLIC'}"
                + (" with grant option" if value.grantable else ""))
    if isinstance(value, RelationName):
        return f"{value.schema}.{value.name}"
    return value


def _rel_names(names: List[RelationName], table_schema: str) -> list:
    return [(_rel_schema(n.schema, table_schema), n.name) for n in names]


def _norm_stats(st: StatisticsDef, table_schema: str) -> dict:
    d = dataclasses.asdict(st)
    d.pop("name")
    d["schema"] = _rel_schema(d["schema"], table_schema)
    return d


def _norm_type(t: TypeDef, table_schema: str) -> dict:
    d = dataclasses.asdict(t)
    for k in ("comment", "oid", "array_oid"):
        d.pop(k)
    d["schema"] = _rel_schema(d["schema"], table_schema)

    def fix(ref):
        if ref is not None:
            if not ref["builtin"]:
                ref["oid"] = None
                ref["text"] = None  # format_type text depends on the search_path
            ref["schema"] = _rel_schema(ref["schema"], table_schema)
    fix(d["base"])
    for a in d["attributes"]:
        fix(a["type"])
    return d


def compare(expected: TableDef, live: TableDef) -> Comparison:
    """All differences between ``expected`` (e.g. from a dump) and ``live``."""
    cmp = Comparison(expected, live)
    diffs = cmp.differences
    es, ls = expected.schema, live.schema
    add = diffs.append

    if expected.kind != live.kind:
        add(Difference("kind", "table", expected.kind, live.kind, False))
    if expected.unlogged != live.unlogged:
        add(Difference("unlogged", "table", expected.unlogged, live.unlogged, False))
    if expected.partition_key != live.partition_key:
        add(Difference("partition_key", "table", expected.partition_key,
                       live.partition_key, False))
    if expected.partition_bound != live.partition_bound:
        add(Difference("partition_bound", "table", expected.partition_bound,
                       live.partition_bound, False))
    if expected.comment != live.comment:
        add(Difference("comment", "table", expected.comment, live.comment, False))
    for attr in ("options", "toast_options", "replica_identity", "replica_identity_index",
                 "clustered_index", "rls_enabled", "rls_forced"):
        a, b = getattr(expected, attr), getattr(live, attr)
        if a != b:
            add(Difference(attr, "table", _plain(a), _plain(b), False))
    if _rel_names(expected.inherits, es) != _rel_names(live.inherits, ls):
        add(Difference("inherits", "table", _plain(expected.inherits),
                       _plain(live.inherits), False))

    live_cols = {c.name: c for c in live.columns}
    exp_cols = {c.name: c for c in expected.columns}
    for e in expected.columns:
        l = live_cols.get(e.name)
        if l is None:
            add(Difference("missing_column", e.name, e.type, None,
                           blocks_copy=e.generated is None))
            continue
        if not same_type(e, es, l, ls):
            add(Difference("type", e.name, e.type, l.type, True, type_widening(e, l)))
        elif e.typmod != l.typmod:
            wid = typmod_widening(e.type_elem, e.typmod, l.typmod)
            add(Difference("typmod", e.name, e.type, l.type, not wid, wid))
        if e.position != l.position:
            add(Difference("position", e.name, e.position, l.position, False))
        if e.not_null != l.not_null:
            add(Difference("nullability", e.name, "NOT NULL" if e.not_null else "NULL",
                           "NOT NULL" if l.not_null else "NULL", False))
        if e.default != l.default:
            add(Difference("default", e.name, e.default, l.default, False))
        if e.identity != l.identity:
            add(Difference("identity", e.name, e.identity, l.identity, False))
        if e.generated != l.generated:
            # Either side generated changes what COPY carries: values would be lost
            # (expected generated, live plain) or COPY refuses (live generated).
            blocks = (e.generated is None) != (l.generated is None)
            add(Difference("generated", e.name, e.generated, l.generated, blocks))
        if (e.collation, e.collation_schema) != (l.collation, l.collation_schema):
            add(Difference("collation", e.name, e.collation, l.collation, False))
        if e.comment != l.comment:
            add(Difference("column_comment", e.name, e.comment, l.comment, False))
        for attr in ("storage", "compression", "statistics", "options"):
            if getattr(e, attr) != getattr(l, attr):
                add(Difference(f"column_{attr}", e.name, _plain(getattr(e, attr)),
                               _plain(getattr(l, attr)), False))
    for l in live.columns:
        if l.name not in exp_cols:
            add(Difference("extra_column", l.name, None, l.type,
                           blocks_copy=not _insertable_without_value(l)))
    cmp.order_matches = _copy_names(expected) == _copy_names(live)

    _compare_named(diffs, "constraint", expected.constraints, live.constraints,
                   lambda c: _norm_constraint(c, es), lambda c: _norm_constraint(c, ls))
    _compare_named(diffs, "index", expected.indexes, live.indexes, _norm_index, _norm_index)
    _compare_named(diffs, "trigger", expected.triggers, live.triggers, dataclasses.asdict,
                   dataclasses.asdict)
    _compare_named(diffs, "policy", expected.policies, live.policies, dataclasses.asdict,
                   dataclasses.asdict)
    _compare_named(diffs, "statistics", expected.statistics, live.statistics,
                   lambda x: _norm_stats(x, es), lambda x: _norm_stats(x, ls))

    etypes = {(_rel_schema(t.schema, es), t.name): t for t in expected.types}
    ltypes = {(_rel_schema(t.schema, ls), t.name): t for t in live.types}
    for key, t in etypes.items():
        lt = ltypes.get(key)
        if lt is None:
            continue   # the column comparison already reports the type change
        a, b = _norm_type(t, es), _norm_type(lt, ls)
        if a != b:
            add(Difference("user_type", t.name, _type_summary(t), _type_summary(lt), False))
    return cmp


def _type_summary(t: TypeDef) -> str:
    if t.kind == "enum":
        return f"enum ({', '.join(t.labels)})"
    if t.kind == "composite":
        return "composite (" + ", ".join(f"{a.name} {a.type.text}"
                                         for a in t.attributes) + ")"
    if t.kind == "domain" and t.base is not None:
        checks = "".join(f" CHECK {c.expression}" for c in t.checks)
        return f"domain over {t.base.text}{' NOT NULL' if t.not_null else ''}{checks}"
    if t.kind == "range" and t.base is not None:
        return f"range of {t.base.text}"
    return t.kind


def _compare_named(diffs, what, expected, live, enorm, lnorm) -> None:
    lmap = {x.name: x for x in live}
    emap = {x.name: x for x in expected}
    for x in expected:
        y = lmap.get(x.name)
        if y is None:
            diffs.append(Difference(f"missing_{what}", x.name, describe(x), None, False))
        elif enorm(x) != lnorm(y):
            diffs.append(Difference(what, x.name, describe(x), describe(y), False))
    for y in live:
        if y.name not in emap:
            diffs.append(Difference(f"extra_{what}", y.name, None, describe(y), False))


def describe(obj: Any) -> str:
    """A short human-readable form of a constraint or index (not for execution)."""
    if isinstance(obj, ConstraintDef):
        if obj.kind == "check":
            return f"CHECK {obj.expression}"
        if obj.kind in ("primary_key", "unique"):
            s = ("PRIMARY KEY" if obj.kind == "primary_key" else "UNIQUE") + \
                f" ({', '.join(obj.columns)})"
            return s + (f" INCLUDE ({', '.join(obj.include)})" if obj.include else "")
        if obj.kind == "foreign_key":
            return (f"FOREIGN KEY ({', '.join(obj.columns)}) REFERENCES {obj.ref_schema}."
                    f"{obj.ref_table} ({', '.join(obj.ref_columns)}) ON UPDATE "
                    f"{obj.on_update} ON DELETE {obj.on_delete}"
                    + (" DEFERRABLE" if obj.deferrable else ""))
        if obj.kind == "exclusion":
            return f"EXCLUDE USING {obj.method} (" + ", ".join(
                f"{_elem(e)} WITH {e.operator}" for e in obj.elements) + ")" + (
                f" WHERE {obj.predicate}" if obj.predicate else "")
    if isinstance(obj, TriggerDef):
        return (f"TRIGGER {obj.timing.upper()} {' OR '.join(obj.events).upper()} "
                f"FOR EACH {'ROW' if obj.for_each_row else 'STATEMENT'}"
                + (f" WHEN ({obj.when})" if obj.when else "")
                + f" EXECUTE FUNCTION {obj.function_schema}.{obj.function_name}()")
    if isinstance(obj, PolicyDef):
        return (f"POLICY {'PERMISSIVE' if obj.permissive else 'RESTRICTIVE'} FOR "
                f"{obj.command.upper()} TO {', '.join(obj.roles) or 'PUBLIC'}"
                + (f" USING ({obj.using})" if obj.using else "")
                + (f" WITH CHECK ({obj.with_check})" if obj.with_check else ""))
    if isinstance(obj, StatisticsDef):
        return (f"STATISTICS ({', '.join(obj.kinds)}) ON "
                + ", ".join(obj.columns + [f"({e})" for e in obj.expressions]))
    if isinstance(obj, IndexDef):
        return ("UNIQUE " if obj.unique else "") + f"INDEX USING {obj.method} (" + \
            ", ".join(_elem(e) for e in obj.elements) + ")" + \
            (f" INCLUDE ({', '.join(obj.include)})" if obj.include else "") + \
            (f" WHERE {obj.predicate}" if obj.predicate else "")
    return str(obj)


def _elem(e) -> str:
    s = e.column if e.column is not None else f"({e.expression})"
    if e.collation:
        s += f' COLLATE "{e.collation}"'
    if e.opclass:
        s += f" {e.opclass}"
    if e.descending:
        s += " DESC"
    return s
