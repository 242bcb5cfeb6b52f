"""Table definitions as plain data: the dataclasses and their versioned JSON form.

A :class:`TableDef` holds everything needed to recreate one table (columns, constraints,
indexes, owned sequences, the user-defined types its columns need, comments) as
structured fields, never as replayable SQL text: the only text kept is the handful of
expressions PostgreSQL can give only as text (defaults, CHECKs, generated columns, index
expressions and predicates, partition keys and bounds), and the DDL layer checks each of
them with a real SQL parser before use.

Names are stored bare (``schema`` and ``name`` in separate fields), never as dotted
strings, because identifiers may themselves contain dots.

JSON: ``TableDef.to_json()`` gives ``{"format": 2, ...}`` with lists in a stable order
(columns by position, constraints / indexes / sequences / triggers / policies /
statistics by name, types in dependency order, privileges in catalog order), so two
captures of the same table give the same ``json.dumps(sort_keys=True)`` text.
``TableDef.from_json()`` checks the version and the type of every field and raises
:class:`~dumpcodec.errors.SchemaError` naming the offending path.

Format 2 added the fields of the rest of what ``pg_dump -t`` keeps (storage parameters,
triggers, policies, privileges, statistics, inheritance, ...); every one of them has a
default, so a format-1 definition (an archive written before) reads as a table without
them.  Format 2 is written so that an older reader says "unsupported format 2" rather
than naming the new fields as unknown.
"""
from __future__ import annotations

import dataclasses
import json
import operator
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import SchemaError

#: Version of the JSON form written by :meth:`TableDef.to_json`.
FORMAT_VERSION = 2
#: Versions :meth:`TableDef.from_json` reads (1: before the fields of format 2).
READABLE_VERSIONS = (1, 2)

#: OIDs below this are built into the server and equal on every server version we
#: support; OIDs of user-defined (and extension) objects differ between databases.
FIRST_NORMAL_OID = 16384

TABLE_KINDS = ("table", "partitioned", "partition")
TYPE_KINDS = ("enum", "domain", "composite", "range", "extension", "base")
CONSTRAINT_KINDS = ("primary_key", "unique", "check", "exclusion", "foreign_key")
#: pg_constraint.confupdtype / confdeltype codes, spelled as SQL.
FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL",
              "d": "SET DEFAULT"}
FK_MATCH = {"s": "SIMPLE", "f": "FULL", "p": "PARTIAL"}
#: pg_class.relreplident
REPLICA_IDENTITY = {"d": "DEFAULT", "n": "NOTHING", "f": "FULL", "i": "USING INDEX"}
#: pg_attribute.attstorage, spelled as SQL
STORAGE = {"p": "PLAIN", "e": "EXTERNAL", "m": "MAIN", "x": "EXTENDED"}
#: pg_attribute.attcompression (PostgreSQL 14+)
COMPRESSION = {"p": "pglz", "l": "lz4"}
TRIGGER_TIMINGS = ("before", "after", "instead of")
TRIGGER_EVENTS = ("insert", "update", "delete", "truncate")
#: pg_trigger.tgenabled: O origin/local (default), D disabled, R replica, A always
TRIGGER_ENABLED = {"O": "", "D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}
POLICY_COMMANDS = ("all", "select", "insert", "update", "delete")
#: aclitem privileges of a table (and of its columns: a, r, w, x), as SQL
TABLE_PRIVILEGES = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE",
                    "D": "TRUNCATE", "x": "REFERENCES", "t": "TRIGGER"}
#: the attribute options PostgreSQL defines (pg_attribute.attoptions); others (a
#: server build may keep its own there) are not captured
COLUMN_OPTIONS = ("n_distinct", "n_distinct_inherited")
#: pg_statistic_ext.stxkind
STATISTICS_KINDS = {"d": "ndistinct", "f": "dependencies", "m": "mcv", "e": "expressions"}


@dataclass
class TypeRef:
    """A reference to a type, as used by a domain, a composite attribute or a range.

    ``text`` is ``format_type()`` output; ``schema``/``name`` name the element type
    (for arrays) or the type itself; ``oid`` is the referenced type's OID as it was on
    the source server (only meaningful for built-in types).
    """
    text: str
    oid: int
    schema: str
    name: str
    typmod: int = -1
    is_array: bool = False
    kind: str = "b"               # pg_type.typtype of the element type
    builtin: bool = True          # built into the server (OID below 16384)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class ColumnDef:
    """One column, in table order (dropped columns never appear)."""
    name: str
    type: str                     # format_type(): 'numeric(12,2)', 'integer[]', 'mood'
    type_oid: int                 # the column's type OID on the source server
    type_schema: str              # schema of the element type (or the type itself)
    type_elem: str                # bare name of the element type (or the type itself)
    typmod: int = -1
    ndims: int = 0                # pg_attribute.attndims (informational, not enforced)
    is_array: bool = False
    type_kind: str = "b"          # pg_type.typtype of the element type: b e d c r m p
    builtin: bool = True          # the element type is built into the server
    not_null: bool = False
    default: Optional[str] = None
    identity: Optional[str] = None    # 'a' (ALWAYS), 'd' (BY DEFAULT) or None
    generated: Optional[str] = None   # expression of a STORED generated column
    collation: Optional[str] = None   # bare collation name when not the type's default
    collation_schema: Optional[str] = None
    position: int = 0             # 1-based among the non-dropped columns
    comment: Optional[str] = None
    storage: Optional[str] = None     # attstorage when not the type's: STORAGE keys
    compression: Optional[str] = None  # attcompression when set: COMPRESSION keys
    statistics: Optional[int] = None   # attstattarget when set (not the default)
    inherited: bool = False            # from an INHERITS parent only (not attislocal)
    acl: Optional[List[Grant]] = None  # column privileges (attacl), None: none
    options: List["StorageParam"] = field(default_factory=list)  # attoptions (n_distinct)

    @property
    def type_name(self) -> str:
        """Schema-qualified name of the (element) type, e.g. 'public.mood'."""
        return f"{self.type_schema}.{self.type_elem}"

    def type_ref(self) -> TypeRef:
        return TypeRef(self.type, self.type_oid, self.type_schema, self.type_elem,
                       self.typmod, self.is_array, self.type_kind, self.builtin)


@dataclass
class IndexElem:
    """One element of an index or exclusion constraint: a column or an expression."""
    column: Optional[str] = None
    expression: Optional[str] = None
    collation: Optional[str] = None
    collation_schema: Optional[str] = None
    opclass: Optional[str] = None         # only when not the default for the type
    opclass_schema: Optional[str] = None
    descending: bool = False
    nulls_first: bool = False             # PostgreSQL's default: True only when DESC
    operator: Optional[str] = None        # exclusion constraints: the WITH operator
    operator_schema: Optional[str] = None


@dataclass
class StorageParam:
    """One storage parameter (``pg_class.reloptions`` entry): ``fillfactor`` = ``70``.

    The value is kept as the server shows it and given back as a string literal, which
    every parameter accepts."""
    name: str
    value: str


@dataclass
class RelationName:
    """A table named by schema and name (an inheritance parent)."""
    schema: str
    name: str


@dataclass
class Grant:
    """One privilege from an ACL (``aclexplode``): ``grantee`` None is PUBLIC."""
    privilege: str                 # 'SELECT', 'INSERT', ... (TABLE_PRIVILEGES values)
    grantee: Optional[str] = None
    grantor: Optional[str] = None
    grantable: bool = False


@dataclass
class IndexDef:
    """An index that does not back a constraint (those are in ``constraints``)."""
    name: str
    method: str
    elements: List[IndexElem]
    include: List[str] = field(default_factory=list)
    unique: bool = False
    nulls_not_distinct: bool = False
    predicate: Optional[str] = None
    inherited: bool = False        # attached to an index on the partitioned parent
    options: List[StorageParam] = field(default_factory=list)   # WITH (...)
    comment: Optional[str] = None


@dataclass
class ConstraintDef:
    """A table constraint; which fields are used depends on ``kind``."""
    name: str
    kind: str                      # one of CONSTRAINT_KINDS
    columns: List[str] = field(default_factory=list)   # pk / unique / fk (local side)
    include: List[str] = field(default_factory=list)   # pk / unique / exclusion
    expression: Optional[str] = None                   # check
    no_inherit: bool = False
    validated: bool = True
    deferrable: bool = False
    deferred: bool = False
    nulls_not_distinct: bool = False
    method: Optional[str] = None                       # exclusion
    elements: List[IndexElem] = field(default_factory=list)   # exclusion
    predicate: Optional[str] = None                    # exclusion WHERE
    ref_schema: Optional[str] = None                   # foreign key
    ref_table: Optional[str] = None
    ref_columns: List[str] = field(default_factory=list)
    on_update: str = "a"
    on_delete: str = "a"
    match: str = "s"
    inherited: bool = False        # comes from the partitioned (or INHERITS) parent
    index_options: List[StorageParam] = field(default_factory=list)  # pk/unique/excl.
    comment: Optional[str] = None


@dataclass
class SequenceDef:
    """A sequence the table owns (serial or identity), with its current state."""
    schema: str
    name: str
    column: Optional[str]
    identity: bool
    data_type: str                 # 'bigint', 'integer' or 'smallint'
    start: int
    increment: int
    min_value: int
    max_value: int
    cache: int = 1
    cycle: bool = False
    last_value: Optional[int] = None
    is_called: bool = False
    comment: Optional[str] = None


@dataclass
class TriggerDef:
    """A trigger (internal ones, e.g. of foreign keys, are not captured).

    ``when`` is the only text (checked like a CHECK); the function is named by schema
    and name, with the arguments as strings; the archive never creates it."""
    name: str
    timing: str                    # one of TRIGGER_TIMINGS
    events: List[str]              # of TRIGGER_EVENTS, in that order
    function_schema: str
    function_name: str
    for_each_row: bool = False
    columns: List[str] = field(default_factory=list)   # UPDATE OF
    when: Optional[str] = None
    arguments: List[str] = field(default_factory=list)
    enabled: str = "O"             # TRIGGER_ENABLED key
    constraint: bool = False       # CREATE CONSTRAINT TRIGGER
    deferrable: bool = False
    deferred: bool = False
    old_table: Optional[str] = None    # REFERENCING OLD TABLE AS
    new_table: Optional[str] = None
    inherited: bool = False        # cloned from the partitioned parent's trigger
    comment: Optional[str] = None


@dataclass
class PolicyDef:
    """A row-level security policy; ``roles`` empty means PUBLIC."""
    name: str
    command: str = "all"           # one of POLICY_COMMANDS
    permissive: bool = True
    roles: List[str] = field(default_factory=list)
    using: Optional[str] = None
    with_check: Optional[str] = None
    comment: Optional[str] = None


@dataclass
class StatisticsDef:
    """An extended statistics object (CREATE STATISTICS) on the table."""
    schema: str
    name: str
    kinds: List[str] = field(default_factory=list)     # STATISTICS_KINDS keys
    columns: List[str] = field(default_factory=list)
    expressions: List[str] = field(default_factory=list)
    target: Optional[int] = None   # stxstattarget when set
    comment: Optional[str] = None


@dataclass
class DomainCheck:
    name: str
    expression: str                # refers to the value as VALUE


@dataclass
class AttributeDef:
    """An attribute of a composite type."""
    name: str
    type: TypeRef
    collation: Optional[str] = None
    collation_schema: Optional[str] = None


@dataclass
class TypeDef:
    """A user-defined type a table needs, captured recursively."""
    schema: str
    name: str
    kind: str                      # one of TYPE_KINDS
    labels: List[str] = field(default_factory=list)          # enum, in sort order
    base: Optional[TypeRef] = None                            # domain base / range subtype
    not_null: bool = False                                    # domain
    default: Optional[str] = None                             # domain
    collation: Optional[str] = None                           # domain / range
    collation_schema: Optional[str] = None
    checks: List[DomainCheck] = field(default_factory=list)   # domain
    attributes: List[AttributeDef] = field(default_factory=list)  # composite
    subtype_opclass: Optional[str] = None                     # range, when not default
    subtype_opclass_schema: Optional[str] = None
    subtype_diff: Optional[str] = None                        # range
    subtype_diff_schema: Optional[str] = None
    multirange_name: Optional[str] = None                     # range, PostgreSQL 14+
    extension: Optional[str] = None                           # owned by this extension
    comment: Optional[str] = None
    oid: int = 0                   # on the source server; differs between databases
    array_oid: int = 0

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class TableDef:
    """Everything needed to recreate one table and check a live one against it."""
    schema: str
    name: str
    kind: str = "table"            # 'table', 'partitioned' or 'partition'
    unlogged: bool = False
    partition_key: Optional[str] = None      # pg_get_partkeydef(): 'RANGE (created)'
    partition_bound: Optional[str] = None    # 'FOR VALUES FROM (...) TO (...)', 'DEFAULT'
    parent_schema: Optional[str] = None
    parent_name: Optional[str] = None
    columns: List[ColumnDef] = field(default_factory=list)
    constraints: List[ConstraintDef] = field(default_factory=list)
    indexes: List[IndexDef] = field(default_factory=list)
    sequences: List[SequenceDef] = field(default_factory=list)
    types: List[TypeDef] = field(default_factory=list)
    comment: Optional[str] = None
    # format 2
    options: List[StorageParam] = field(default_factory=list)        # WITH (...)
    toast_options: List[StorageParam] = field(default_factory=list)  # toast.*
    inherits: List[RelationName] = field(default_factory=list)       # INHERITS (...)
    replica_identity: str = "d"                                      # REPLICA_IDENTITY
    replica_identity_index: Optional[str] = None
    clustered_index: Optional[str] = None                            # CLUSTER ON
    triggers: List[TriggerDef] = field(default_factory=list)
    rls_enabled: bool = False
    rls_forced: bool = False
    policies: List[PolicyDef] = field(default_factory=list)
    statistics: List[StatisticsDef] = field(default_factory=list)
    owner: Optional[str] = None
    acl: Optional[List[Grant]] = None    # relacl; None: the owner's default privileges

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def column_comments(self) -> Dict[str, str]:
        return {c.name: c.comment for c in self.columns if c.comment is not None}

    def column(self, name: str) -> ColumnDef:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def to_json(self) -> Dict[str, Any]:
        """The versioned, stable JSON form (a dict ready for ``json.dumps``)."""
        out: Dict[str, Any] = {"format": FORMAT_VERSION}
        out.update(_to_plain(self))
        return out

    def to_json_text(self) -> str:
        """:meth:`to_json` as compact JSON text with sorted keys: what
        ``json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True,
        ensure_ascii=False, allow_nan=False)`` gives, without building the dicts
        first (the json module's C encoder walks the dataclasses; at thousands of
        tables building the dicts cost more than encoding them).  What JSON cannot
        hold raises TypeError or ValueError."""
        doc = _plain_fields(self)
        doc["format"] = FORMAT_VERSION
        return _TEXT_ENCODER.encode(doc)

    @classmethod
    def from_json(cls, data: Any) -> "TableDef":
        """Rebuild from :meth:`to_json` output; :class:`SchemaError` on bad input."""
        if not isinstance(data, dict):
            raise SchemaError(f"table definition: expected a JSON object, got "
                              f"{type(data).__name__}")
        version = data.get("format")
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise SchemaError(f"table definition: unsupported format {version!r} "
                              f"(this version reads formats "
                              f"{', '.join(map(str, READABLE_VERSIONS))})")
        body = {k: v for k, v in data.items() if k != "format"}
        tdef = _from_plain(cls, body, "table")
        _check_semantics(tdef)
        return tdef


_FIELDS: Dict[type, Tuple[str, ...]] = {}


_SCALARS = (str, int, float, bool, type(None))


def _field_names(obj: Any) -> Tuple[str, ...]:
    names = _FIELDS[type(obj)] = tuple(f.name for f in dataclasses.fields(obj))
    return names


#: type -> (its field names sorted, a getter of their values in that order)
_SORTED_FIELDS: Dict[type, Tuple[Tuple[str, ...], Callable[[Any], Tuple[Any, ...]]]] = {}


def _sorted_fields(obj: Any) -> Tuple[Tuple[str, ...], Callable[[Any], Tuple[Any, ...]]]:
    t = type(obj)
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"Object of type {t.__name__} is not JSON serializable")
    names = tuple(sorted(_FIELDS.get(t) or _field_names(obj)))
    get = operator.attrgetter(*names)
    _SORTED_FIELDS[t] = (names, get if len(names) > 1 else (lambda o: (get(o),)))
    return _SORTED_FIELDS[t]


def _plain_fields(obj: Any) -> Any:
    """The C encoder's ``default``: a dataclass as the dict of its fields (what
    :func:`_to_plain` makes of it, one level at a time), in key order already (one
    C call for the values, and the encoder's sort finds them sorted: at thousands of
    tables a definition's 150 keys cost more sorting than encoding)."""
    names, get = _SORTED_FIELDS.get(type(obj)) or _sorted_fields(obj)
    return dict(zip(names, get(obj)))


_TEXT_ENCODER = json.JSONEncoder(default=_plain_fields, separators=(",", ":"),
                                 sort_keys=True, ensure_ascii=False, allow_nan=False)


def _to_plain(obj: Any) -> Any:
    t = type(obj)
    if t in _SCALARS:
        return obj
    names = _FIELDS.get(t)
    if names is None and dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        names = _FIELDS[t] = tuple(f.name for f in dataclasses.fields(obj))
    if names is not None:
        return {n: _to_plain(getattr(obj, n)) for n in names}
    if t is list or t is tuple or isinstance(obj, (list, tuple)):
        return [_to_plain(x) for x in obj]
    return obj


#: type -> its converter (value, path) -> value, built once per type: the checks
#: below without resolving type hints and fields at every value (thousands of tables)
_CONVERTERS: Dict[Any, Callable[[Any, str], Any]] = {}


def _from_plain(tp: Any, value: Any, path: str) -> Any:
    return _converter(tp)(value, path)


def _converter(tp: Any) -> Callable[[Any, str], Any]:
    conv = _CONVERTERS.get(tp)
    if conv is None:
        conv = _CONVERTERS[tp] = _make_converter(tp)
    return conv


def _make_converter(tp: Any) -> Callable[[Any, str], Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = args[0]

        def optional(value: Any, path: str) -> Any:
            return None if value is None else _converter(inner)(value, path)
        return optional
    if origin in (list, List):
        (item,) = typing.get_args(tp)

        def list_of(value: Any, path: str) -> Any:
            if not isinstance(value, list):
                raise SchemaError(f"{path}: expected a list, got {type(value).__name__}")
            conv = _converter(item)
            return [conv(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return list_of
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        fields = [(f.name, hints[f.name],
                   f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING)
                  for f in dataclasses.fields(tp)]
        names = frozenset(name for name, _, _ in fields)

        def record(value: Any, path: str) -> Any:
            if not isinstance(value, dict):
                raise SchemaError(f"{path}: expected an object, got {type(value).__name__}")
            if not names.issuperset(value):
                unknown = sorted(set(value) - names)
                raise SchemaError(f"{path}: unknown field(s) {', '.join(unknown)}")
            kwargs = {}
            for name, hint, required in fields:
                if name not in value:
                    if required:
                        raise SchemaError(f"{path}: missing field {name!r}")
                    continue
                kwargs[name] = _converter(hint)(value[name], f"{path}.{name}")
            return tp(**kwargs)
        return record
    if tp is bool:
        def boolean(value: Any, path: str) -> Any:
            if not isinstance(value, bool):
                raise SchemaError(f"{path}: expected true/false, got {value!r}")
            return value
        return boolean
    if tp is int:
        def integer(value: Any, path: str) -> Any:
            if isinstance(value, bool) or not isinstance(value, int):
                raise SchemaError(f"{path}: expected an integer, got {value!r}")
            return value
        return integer
    if tp is str:
        def string(value: Any, path: str) -> Any:
            if not isinstance(value, str):
                raise SchemaError(f"{path}: expected a string, got {value!r}")
            if "\x00" in value:
                raise SchemaError(f"{path}: NUL character in {value!r}")
            return value
        return string

    def unsupported(value: Any, path: str) -> Any:   # pragma: no cover
        raise SchemaError(f"{path}: unsupported field type {tp!r}")
    return unsupported


def _check_semantics(t: TableDef) -> None:
    """Checks beyond field types: enumerations, names, positions."""
    where = f"table {t.schema}.{t.name}"
    if not t.schema or not t.name:
        raise SchemaError(f"{where}: empty schema or table name")
    if t.kind not in TABLE_KINDS:
        raise SchemaError(f"{where}: kind {t.kind!r} is not one of {TABLE_KINDS}")
    if t.kind == "partition" and (t.parent_schema is None or t.parent_name is None
                                  or t.partition_bound is None):
        raise SchemaError(f"{where}: a partition needs parent_schema, parent_name and "
                          f"partition_bound")
    if t.kind == "partitioned" and t.partition_key is None:
        raise SchemaError(f"{where}: a partitioned table needs partition_key")
    seen = set()
    for i, c in enumerate(t.columns, 1):
        if not c.name:
            raise SchemaError(f"{where}: column {i} has an empty name")
        if c.name in seen:
            raise SchemaError(f"{where}: duplicate column {c.name!r}")
        seen.add(c.name)
        if c.position != i:
            raise SchemaError(f"{where}: column {c.name!r} has position {c.position}, "
                              f"expected {i}")
        if not 0 <= c.ndims <= 6:   # PostgreSQL's MAXDIM
            raise SchemaError(f"{where}: column {c.name!r}: ndims {c.ndims} out of range")
        if c.identity not in (None, "a", "d"):
            raise SchemaError(f"{where}: column {c.name!r}: identity {c.identity!r} is "
                              f"not 'a', 'd' or null")
        if c.identity and c.generated:
            raise SchemaError(f"{where}: column {c.name!r} is both identity and generated")
    for con in t.constraints:
        if con.kind not in CONSTRAINT_KINDS:
            raise SchemaError(f"{where}: constraint {con.name!r}: kind {con.kind!r} is not "
                              f"one of {CONSTRAINT_KINDS}")
        if con.on_update not in FK_ACTIONS or con.on_delete not in FK_ACTIONS:
            raise SchemaError(f"{where}: constraint {con.name!r}: bad foreign key action")
        if con.match not in FK_MATCH:
            raise SchemaError(f"{where}: constraint {con.name!r}: bad match type "
                              f"{con.match!r}")
        if con.kind == "check" and not con.expression:
            raise SchemaError(f"{where}: check constraint {con.name!r} has no expression")
        if con.kind == "foreign_key" and (not con.ref_table or not con.ref_schema
                                          or len(con.ref_columns) != len(con.columns)):
            raise SchemaError(f"{where}: foreign key {con.name!r}: bad reference")
        for col in list(con.columns) + list(con.include):
            if col not in seen:
                raise SchemaError(f"{where}: constraint {con.name!r} names unknown "
                                  f"column {col!r}")
    for ix in t.indexes:
        if not ix.elements:
            raise SchemaError(f"{where}: index {ix.name!r} has no elements")
    for ty in t.types:
        if ty.kind not in TYPE_KINDS:
            raise SchemaError(f"{where}: type {ty.schema}.{ty.name}: kind {ty.kind!r} is "
                              f"not one of {TYPE_KINDS}")
    _check_extras(t, where, seen)
    for s in t.sequences:
        if s.column is not None and s.column not in seen:
            raise SchemaError(f"{where}: sequence {s.name!r} belongs to unknown column "
                              f"{s.column!r}")
        if s.data_type not in ("smallint", "integer", "bigint"):
            raise SchemaError(f"{where}: sequence {s.name!r}: data type {s.data_type!r} "
                              f"is not smallint, integer or bigint")


def _bad(where: str, what: str, value: Any, allowed) -> SchemaError:
    return SchemaError(f"{where}: {what} {value!r} is not one of "
                       f"{', '.join(map(repr, allowed))}")


def _check_params(where: str, what: str, params: List[StorageParam]) -> None:
    for p in params:
        if not p.name or not all(ch.isalnum() or ch == "_" for ch in p.name):
            raise SchemaError(f"{where}: {what}: bad storage parameter name {p.name!r}")


def _check_acl(where: str, acl: Optional[List[Grant]]) -> None:
    for g in acl or ():
        if g.privilege not in TABLE_PRIVILEGES.values():
            raise _bad(where, "privilege", g.privilege, TABLE_PRIVILEGES.values())


def _check_extras(t: TableDef, where: str, columns: set) -> None:
    """The fields of format 2."""
    _check_params(where, "options", t.options)
    _check_params(where, "toast_options", t.toast_options)
    if t.replica_identity not in REPLICA_IDENTITY:
        raise _bad(where, "replica identity", t.replica_identity, REPLICA_IDENTITY)
    if (t.replica_identity == "i") != (t.replica_identity_index is not None):
        raise SchemaError(f"{where}: replica identity 'i' goes with an index, and only it")
    _check_acl(where, t.acl)
    for c in t.columns:
        if c.storage is not None and c.storage not in STORAGE:
            raise _bad(f"{where}, column {c.name!r}", "storage", c.storage, STORAGE)
        if c.compression is not None and c.compression not in COMPRESSION:
            raise _bad(f"{where}, column {c.name!r}", "compression", c.compression,
                       COMPRESSION)
        _check_acl(f"{where}, column {c.name!r}", c.acl)
        _check_params(where, f"column {c.name!r}", c.options)
    for ix in t.indexes:
        _check_params(where, f"index {ix.name!r}", ix.options)
    for con in t.constraints:
        _check_params(where, f"constraint {con.name!r}", con.index_options)
    for tr in t.triggers:
        w = f"{where}, trigger {tr.name!r}"
        if tr.timing not in TRIGGER_TIMINGS:
            raise _bad(w, "timing", tr.timing, TRIGGER_TIMINGS)
        if not tr.events or any(e not in TRIGGER_EVENTS for e in tr.events):
            raise SchemaError(f"{w}: events {tr.events!r} are not among {TRIGGER_EVENTS}")
        if tr.enabled not in TRIGGER_ENABLED:
            raise _bad(w, "enabled", tr.enabled, TRIGGER_ENABLED)
        for col in tr.columns:
            if col not in columns:
                raise SchemaError(f"{w}: names unknown column {col!r}")
    for po in t.policies:
        if po.command not in POLICY_COMMANDS:
            raise _bad(f"{where}, policy {po.name!r}", "command", po.command,
                       POLICY_COMMANDS)
    for st in t.statistics:
        w = f"{where}, statistics {st.name!r}"
        if any(k not in STATISTICS_KINDS for k in st.kinds):
            raise SchemaError(f"{w}: kinds {st.kinds!r} are not among "
                              f"{tuple(STATISTICS_KINDS)}")
        if len(st.columns) + len(st.expressions) < 1:
            raise SchemaError(f"{w}: no columns or expressions")
        for col in st.columns:
            if col not in columns:
                raise SchemaError(f"{w}: names unknown column {col!r}")
