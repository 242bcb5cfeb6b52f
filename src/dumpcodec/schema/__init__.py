"""Table definitions: introspect, serialize, compare, and recreate (DDL).

The ``schema`` layer of dumpcodec, pure Python on psycopg 3:

* :mod:`.model` -- the dataclasses (:class:`TableDef`, :class:`ColumnDef`, ...) and
  their versioned JSON form;
* :mod:`.capture` -- reading definitions from a live database's catalog;
* :mod:`.selectors` -- resolving what users type (``schema.table``, patterns, schema
  names, opaque ids) into tables;
* :mod:`.selection` -- pg_dump's selection switches and filter files
  (:class:`Selection`), and every user table (:func:`all_user_tables`);
* :mod:`.db_tables` -- the live tables ids name, validated against definitions
  (DaCHS's ``getTablesForIds`` and ``iterDbTables``);
* :mod:`.compare` -- differences between a definition and a live table, and whether a
  binary COPY (or a re-encoding load) is possible;
* :mod:`.ddl` -- statements recreating a table, by phase, with every text expression
  checked by a SQL parser;
* :mod:`.codec_types` -- the codec's view of the column types (``type_specs``).

Decisions worth knowing:

* Expressions are captured relative to the table's own schema (search_path set to
  it), and a DDL plan's ``setup`` sets search_path to the target schema.  With
  ``target_schema``, objects of the table's own schema (its types, owned sequences,
  partition parent, foreign-key targets) follow it there; objects of other schemas
  stay where they are.  ``compare`` treats own-schema references relatively, so a
  relocated table compares equal to its definition.
* ``compare``: a column-order difference does not block a binary COPY (COPY always
  lists the columns, see ``copy_columns``; ``Comparison.order_matches`` covers
  positional loads), and a typmod that only widens does not either (the receive
  functions apply the live typmod); a type change always does.
* Captured as well, as ``pg_dump -t`` keeps them (format 2): storage parameters,
  triggers, row-level security, owner and grants, replica identity, column storage /
  compression / statistics targets, extended statistics, CLUSTER ON, INHERITS parents,
  comments on constraints, indexes and owned sequences.  OID-alias (reg*) column
  values move by name (:mod:`.text_columns`).
* Not captured: tablespaces, access methods other than heap, security labels, grants
  on owned sequences, and typmods of non-built-in types.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, List

# The names below are loaded on first use, each from its module (PEP 562), so that a
# dump, which captures and selects, does not import the DDL and safety modules
# (pglast's parser, the allow-list): ``from dumpcodec.schema import ddl_plan`` and
# ``schema.ddl_plan`` work as before.
_LAZY = {
    "codec_types": ("column_type_info", "live_type_oids", "type_registry", "type_specs"),
    "capture": ("capture_live_if_exists", "capture_table", "capture_tables",
                "capture_types"),
    "compare": ("Comparison", "Difference", "compare", "describe", "type_widening",
                "typmod_widening"),
    "ddl": ("PHASES", "DDLPlan", "checked_expression", "column_defaults", "ddl_plan",
            "existing_types_for", "free_sequence_statements"),
    "ddl_build": ("Step", "run_steps"),
    "ddl_extras": ("privileges_note",),
    "text_columns": ("OID_ALIAS_TYPES", "Stage", "text_columns", "stage_plan"),
    "model": ("FORMAT_VERSION", "AttributeDef", "ColumnDef", "ConstraintDef",
              "DomainCheck", "Grant", "IndexDef", "IndexElem", "PolicyDef",
              "RelationName", "SequenceDef", "StatisticsDef", "StorageParam", "TableDef",
              "TriggerDef", "TypeDef", "TypeRef"),
    "db_tables": ("get_tables_for_ids", "iter_db_tables"),
    "selection": ("FilterRule", "Resolved", "Selection", "all_user_tables",
                  "parse_filter", "read_filter", "resolve_selection"),
    "selectors": ("TableRef", "partition_leaves", "resolve_selectors"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}
# two functions named as their modules are bound now (as before): a later import of
# the module would otherwise leave the module under the function's name
from .compare import compare  # noqa: E402
from .text_columns import text_columns  # noqa: E402

if TYPE_CHECKING:   # what the lazy names are, for type checkers
    from .codec_types import column_type_info, live_type_oids, type_registry, type_specs
    from .capture import (capture_live_if_exists, capture_table, capture_tables,
                          capture_types)
    from .compare import (Comparison, Difference, compare, describe, type_widening,
                          typmod_widening)
    from .ddl import (PHASES, DDLPlan, checked_expression, column_defaults, ddl_plan,
                      existing_types_for, free_sequence_statements)
    from .ddl_build import Step, run_steps
    from .ddl_extras import privileges_note
    from .text_columns import OID_ALIAS_TYPES, Stage, text_columns, stage_plan
    from .model import (FORMAT_VERSION, AttributeDef, ColumnDef, ConstraintDef,
                        DomainCheck, Grant, IndexDef, IndexElem, PolicyDef, RelationName,
                        SequenceDef, StatisticsDef, StorageParam, TableDef, TriggerDef,
                        TypeDef, TypeRef)
    from .db_tables import get_tables_for_ids, iter_db_tables
    from .selection import (FilterRule, Resolved, Selection, all_user_tables,
                            parse_filter, read_filter, resolve_selection)
    from .selectors import TableRef, partition_leaves, resolve_selectors


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        # a submodule not imported yet: ``from dumpcodec.schema import ddl`` imports it
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def copy_columns(tdef: "TableDef") -> List[str]:
    """The columns a COPY of this table lists, in table order (generated ones left out:
    the server computes them and refuses values for them)."""
    return [c.name for c in tdef.columns if c.generated is None]


__all__ = [
    "FORMAT_VERSION", "PHASES", "AttributeDef", "ColumnDef", "Comparison", "ConstraintDef",
    "DDLPlan", "Difference", "DomainCheck", "IndexDef", "IndexElem", "SequenceDef",
    "TableDef", "TableRef", "TypeDef", "TypeRef", "capture_live_if_exists",
    "capture_table", "capture_tables", "capture_types", "checked_expression", "compare",
    "column_defaults", "copy_columns", "ddl_plan", "free_sequence_statements", "describe", "existing_types_for", "partition_leaves",
    "resolve_selectors", "type_widening", "typmod_widening", "column_type_info",
    "live_type_oids", "type_registry", "type_specs", "OID_ALIAS_TYPES", "Stage",
    "text_columns", "stage_plan", "Step", "privileges_note", "run_steps", "Grant",
    "PolicyDef", "RelationName", "StatisticsDef", "StorageParam", "TriggerDef",
    "FilterRule", "Resolved", "Selection", "all_user_tables", "parse_filter", "read_filter",
    "resolve_selection", "get_tables_for_ids", "iter_db_tables",
]
