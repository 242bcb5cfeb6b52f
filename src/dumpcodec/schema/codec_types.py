"""What the COPY codec needs to know about a table's column types.

The codec (:mod:`dumpcodec.copy.types`) knows the built-in types; enums, domains,
composites, ranges and hstore have per-database OIDs and must be registered on a
:class:`~dumpcodec.copy.types.TypeRegistry`.  :func:`type_registry` does that from a
:class:`~.model.TableDef`'s ``types`` (with the OIDs recorded at capture, right for
decoding the dump), or with the OIDs of another database (:func:`live_type_oids`) when
rows are re-encoded for a restore: arrays and composites carry element and field OIDs
on the wire, and the server checks them.

User types are registered under their schema-qualified name (``"app.mood"``).
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import psycopg

from ..errors import SchemaError
from .model import ColumnDef, TableDef, TypeRef

TypeOids = Mapping[Tuple[str, str], Tuple[int, int]]


def live_type_oids(conn: psycopg.Connection, tdef: TableDef,
                   target_schema: Optional[str] = None) -> Dict[Tuple[str, str], Tuple[int, int]]:
    """(oid, array oid) in ``conn``'s database of each type ``tdef`` needs, keyed by the
    type's (schema, name) in ``tdef``; types of the table's own schema are looked up in
    ``target_schema`` when given (where :func:`~.ddl.ddl_plan` creates them)."""
    out = {}
    for ty in tdef.types:
        schema = target_schema if (target_schema and ty.schema == tdef.schema) else ty.schema
        row = conn.execute("SELECT t.oid, t.typarray FROM pg_catalog.pg_type t "
                           "JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
                           "WHERE n.nspname = %s AND t.typname = %s",
                           (schema, ty.name)).fetchone()
        if row is None:
            raise SchemaError(f"type {schema}.{ty.name} (needed by {tdef.schema}."
                              f"{tdef.name}) does not exist")
        out[(ty.schema, ty.name)] = (int(row[0]), int(row[1]))
    return out


def _ref_spec(reg, ref: TypeRef):
    if ref.builtin:
        ti = reg.resolve(ref.text)
        return ti if ti.oid == ref.oid else reg.resolve(ref.oid)
    ti = reg.lookup_name(f"{ref.schema}.{ref.name}")
    if ti is None:     # not registered (an extension type without a codec): raw bytes
        return reg.resolve(ref.oid)
    return reg.array_of(ti) if ref.is_array else ti


def type_registry(tdef: TableDef, oids: Optional[TypeOids] = None):
    """A TypeRegistry knowing the user-defined types of ``tdef``.

    ``oids`` maps (schema, name) to (oid, array oid) in the database the data goes to
    or comes from; without it, the OIDs recorded at capture are used.
    """
    from ..copy.types import TypeRegistry
    reg = TypeRegistry()
    for ty in tdef.types:          # dependency order: what a type needs comes first
        oid, aoid = (oids or {}).get((ty.schema, ty.name), (ty.oid, ty.array_oid))
        qname = f"{ty.schema}.{ty.name}"
        if ty.kind == "enum":
            reg.register_enum(qname, oid, aoid, ty.labels)
        elif ty.kind == "domain" and ty.base is not None:
            reg.register_domain(qname, oid, _ref_spec(reg, ty.base), aoid)
        elif ty.kind == "composite":
            reg.register_composite(qname, oid, [(a.name, _ref_spec(reg, a.type))
                                                for a in ty.attributes], aoid)
        elif ty.kind == "range" and ty.base is not None:
            reg.register_range(qname, oid, _ref_spec(reg, ty.base), aoid)
        elif ty.kind == "extension" and ty.name == "hstore":
            reg.register_hstore(oid, aoid, name=qname)
    return reg


def column_type_info(reg, col: ColumnDef):
    """The codec TypeInfo of one column, resolved against ``reg``."""
    return _ref_spec(reg, col.type_ref())


def type_specs(tdef: TableDef, columns: Optional[Sequence[str]] = None,
               registry=None, oids: Optional[TypeOids] = None) -> List:
    """The codec TypeInfo of each COPY column (``columns`` or :func:`copy_columns`).

    ``registry``: one from :func:`type_registry` (built here when omitted, with
    ``oids`` if given).
    """
    if registry is None:
        registry = type_registry(tdef, oids)
    if columns is None:
        columns = [c.name for c in tdef.columns if c.generated is None]
    out = []
    for name in columns:
        try:
            col = tdef.column(name)
        except KeyError:
            raise SchemaError(f"table {tdef.schema}.{tdef.name} has no column "
                              f"{name!r}") from None
        out.append(column_type_info(registry, col))
    return out
