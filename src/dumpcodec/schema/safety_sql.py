"""The catalog queries of the allow-list (:mod:`.safety`), kept apart for their length.

Every name is qualified with ``pg_catalog`` (a restore's session has the target schema
on its search path, where an archive's objects live).  The dependency query takes its
objects from one of the ``*_OBJECTS`` texts (``{objects}``) and what the rules allow by
name (``%(table)s``, ``%(rels)s``, ``%(own)s``, ``%(types)s``, ``%(schemas)s``), so that
it can be queued in a pipeline with the DDL before it.
"""

PSEUDO_REFUSED = ("internal", "cstring", "trigger", "event_trigger", "language_handler",
                   "fdw_handler", "index_am_handler", "tsm_handler", "table_am_handler")

FUNCS_SQL = """
SELECT p.oid, p.proname, p.oid::pg_catalog.regprocedure::pg_catalog.text,
       p.provolatile, p.prosecdef, p.prokind, p.proretset,
       p.proacl IS NULL OR EXISTS (
           SELECT 1 FROM pg_catalog.aclexplode(p.proacl) a
           WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'),
       EXISTS (SELECT 1 FROM pg_catalog.pg_type t
               WHERE (t.oid = p.prorettype OR t.oid = ANY (p.proargtypes))
                 AND t.typnamespace = 'pg_catalog'::pg_catalog.regnamespace
                 AND t.typname = ANY (%s))
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
"""

# -- the dependency query ---------------------------------------------------------------
#
# One query judges a set of objects: ``o`` lists them (catalog, oid, kind, label, and
# the relation they belong to, whose references to itself are not interesting);
# what the rules allow is given by name and resolved here, so that the query can be
# queued in a pipeline with the DDL before it.  One row per dependency: what depends
# (kind, label), on what (catalog, oid, description), where that lives, and what the
# rules need to know about it.
#
# ``OFFSET 0`` in an EXISTS keeps it a probe of an index per row: without it the
# planner may turn it into a hash of all of pg_depend or pg_index, built at every run,
# whose cost grows with the target's catalogs (2.4 ms a query at 1,000 tables).

DEPS_SQL = r"""
WITH o(classid, objid, kind, label, self) AS ({objects}),
own(oid) AS (
    SELECT pg_catalog.to_regclass(n)::pg_catalog.oid
    FROM pg_catalog.unnest(%(own)s::pg_catalog.text[]) n
    UNION ALL
    -- owned by the table or by a parent it inherits its defaults from
    SELECT d.objid FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_class s ON s.oid = d.objid
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.refobjid = ANY (ARRAY(SELECT pg_catalog.to_regclass(n)::pg_catalog.oid
                                  FROM pg_catalog.unnest(%(rels)s::pg_catalog.text[]
                                                         || %(table)s::pg_catalog.text) n))
      AND d.deptype IN ('a', 'i') AND s.relkind = 'S'),
typ0(oid) AS (
    SELECT pg_catalog.to_regtype(n)::pg_catalog.oid
    FROM pg_catalog.unnest(%(types)s::pg_catalog.text[]) n),
typ(oid) AS (
    SELECT t.oid FROM pg_catalog.pg_type t JOIN typ0 ON typ0.oid = t.oid
    UNION ALL SELECT t.typarray FROM pg_catalog.pg_type t JOIN typ0 ON typ0.oid = t.oid
    UNION ALL SELECT r.rngmultitypid FROM pg_catalog.pg_range r
              JOIN typ0 ON typ0.oid = r.rngtypid
    UNION ALL SELECT m.typarray FROM pg_catalog.pg_range r
              JOIN typ0 ON typ0.oid = r.rngtypid
              JOIN pg_catalog.pg_type m ON m.oid = r.rngmultitypid),
rel(oid) AS (
    SELECT pg_catalog.to_regclass(n)::pg_catalog.oid
    FROM pg_catalog.unnest(%(rels)s::pg_catalog.text[]) n
    UNION ALL SELECT pg_catalog.to_regclass(%(table)s)::pg_catalog.oid
    UNION ALL SELECT t.typrelid FROM pg_catalog.pg_type t JOIN typ0 ON typ0.oid = t.oid),
-- the stored expression trees: pg_depend records nothing about built-in (pinned)
-- objects, so the functions, operators and regclass constants of an expression are
-- also read from its tree (nodeToString text)
trees(kind, label, tree) AS (
    SELECT o.kind, o.label, r.ev_action::pg_catalog.text FROM o
    JOIN pg_catalog.pg_rewrite r ON r.oid = o.objid
    WHERE o.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
    UNION ALL
    SELECT o.kind, o.label, ad.adbin::pg_catalog.text FROM o
    JOIN pg_catalog.pg_attrdef ad ON ad.oid = o.objid
    WHERE o.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass
    UNION ALL
    SELECT o.kind, o.label, c.conbin::pg_catalog.text FROM o
    JOIN pg_catalog.pg_constraint c ON c.oid = o.objid
    WHERE o.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
    UNION ALL
    SELECT o.kind, o.label, pg_catalog.concat_ws(' ', i.indexprs::pg_catalog.text,
                                                 i.indpred::pg_catalog.text) FROM o
    JOIN pg_catalog.pg_index i ON i.indexrelid = o.objid
    WHERE o.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
    UNION ALL
    SELECT o.kind, o.label, p.partexprs::pg_catalog.text FROM o
    JOIN pg_catalog.pg_partitioned_table p ON p.partrelid = o.objid
    WHERE o.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
    UNION ALL
    SELECT o.kind, o.label, pg_catalog.concat_ws(' ', p.polqual::pg_catalog.text,
                                                 p.polwithcheck::pg_catalog.text) FROM o
    JOIN pg_catalog.pg_policy p ON p.oid = o.objid
    WHERE o.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass
    UNION ALL
    SELECT o.kind, o.label, t.tgqual::pg_catalog.text FROM o
    JOIN pg_catalog.pg_trigger t ON t.oid = o.objid
    WHERE o.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass
    UNION ALL
    SELECT o.kind, o.label, x.stxexprs::pg_catalog.text FROM o
    JOIN pg_catalog.pg_statistic_ext x ON x.oid = o.objid
    WHERE o.classid = 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass
    UNION ALL
    SELECT o.kind, o.label, ty.typdefaultbin::pg_catalog.text FROM o
    JOIN pg_catalog.pg_type ty ON ty.oid = o.objid
    WHERE o.classid = 'pg_catalog.pg_type'::pg_catalog.regclass),
called(kind, label, refclassid, refobjid) AS (
    SELECT t.kind, t.label, 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid,
           m[1]::pg_catalog.oid
    FROM trees t, pg_catalog.regexp_matches(
        t.tree, ':(?:funcid|opfuncid|aggfnoid|winfnoid) (\d+)', 'g') m
    UNION ALL
    SELECT t.kind, t.label, 'pg_catalog.pg_operator'::pg_catalog.regclass, m[1]::pg_catalog.oid
    FROM trees t, pg_catalog.regexp_matches(t.tree, ':opno (\d+)', 'g') m
    UNION ALL
    SELECT t.kind, t.label, 'pg_catalog.pg_operator'::pg_catalog.regclass, n::pg_catalog.oid
    FROM trees t, pg_catalog.regexp_matches(t.tree, ':opnos \(o ([0-9 ]+)\)', 'g') m,
         -- unnest, not regexp_split_to_table: that one is estimated at 1,000 rows,
         -- which made the planner expect 90,000 dependencies and cost the query
         -- high enough to JIT-compile it (seconds)
         pg_catalog.unnest(pg_catalog.string_to_array(pg_catalog.btrim(m[1]), ' ')) n
    WHERE n <> ''
    UNION ALL
    -- regclass constants (nextval('x'), ...): the four bytes of the OID, little end first
    SELECT t.kind, t.label, 'pg_catalog.pg_class'::pg_catalog.regclass,
           ((m[1]::pg_catalog.int8 & 255)
            | ((m[2]::pg_catalog.int8 & 255) << 8)
            | ((m[3]::pg_catalog.int8 & 255) << 16)
            | ((m[4]::pg_catalog.int8 & 255) << 24))::pg_catalog.oid
    FROM trees t, pg_catalog.regexp_matches(
        t.tree, '\{{CONST :consttype 2205 [^}}]*:constisnull false [^}}]*:constvalue 4 '
                '\[ (-?\d+) (-?\d+) (-?\d+) (-?\d+)', 'g') m
    UNION ALL
    -- the operators of exclusion constraints and foreign keys
    SELECT o.kind, o.label, 'pg_catalog.pg_operator'::pg_catalog.regclass, x
    FROM o JOIN pg_catalog.pg_constraint c ON c.oid = o.objid,
         pg_catalog.unnest(pg_catalog.array_cat(pg_catalog.array_cat(c.conexclop,
             c.conpfeqop), pg_catalog.array_cat(c.conppeqop, c.conffeqop))) x
    WHERE o.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass),
d AS (
    SELECT DISTINCT o.kind, o.label, dep.refclassid, dep.refobjid
    FROM o JOIN pg_catalog.pg_depend dep
      ON dep.classid = o.classid AND dep.objid = o.objid
    WHERE dep.deptype IN ('n', 'a', 'i')
      AND NOT (dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
               AND dep.refobjid = o.self)
    UNION
    SELECT kind, label, refclassid, refobjid FROM called
    WHERE NOT (refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
               AND refobjid IN (SELECT self FROM o)))
SELECT d.kind, d.label, d.refclassid::pg_catalog.regclass::pg_catalog.text, d.refobjid,
       pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0),
       CASE d.refclassid
         WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN
           (SELECT pronamespace FROM pg_catalog.pg_proc WHERE oid = d.refobjid)
         WHEN 'pg_catalog.pg_operator'::pg_catalog.regclass THEN
           (SELECT oprnamespace FROM pg_catalog.pg_operator WHERE oid = d.refobjid)
         WHEN 'pg_catalog.pg_type'::pg_catalog.regclass THEN
           (SELECT typnamespace FROM pg_catalog.pg_type WHERE oid = d.refobjid)
         WHEN 'pg_catalog.pg_opclass'::pg_catalog.regclass THEN
           (SELECT opcnamespace FROM pg_catalog.pg_opclass WHERE oid = d.refobjid)
         WHEN 'pg_catalog.pg_opfamily'::pg_catalog.regclass THEN
           (SELECT opfnamespace FROM pg_catalog.pg_opfamily WHERE oid = d.refobjid)
         WHEN 'pg_catalog.pg_collation'::pg_catalog.regclass THEN
           (SELECT collnamespace FROM pg_catalog.pg_collation WHERE oid = d.refobjid)
         WHEN 'pg_catalog.pg_ts_config'::pg_catalog.regclass THEN
           (SELECT cfgnamespace FROM pg_catalog.pg_ts_config WHERE oid = d.refobjid)
         WHEN 'pg_catalog.pg_ts_dict'::pg_catalog.regclass THEN
           (SELECT dictnamespace FROM pg_catalog.pg_ts_dict WHERE oid = d.refobjid)
       END = 'pg_catalog'::pg_catalog.regnamespace,
       EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
               WHERE e.classid = d.refclassid AND e.objid = d.refobjid
                 AND e.deptype = 'e' OFFSET 0),
       CASE d.refclassid
         WHEN 'pg_catalog.pg_operator'::pg_catalog.regclass THEN
           (SELECT oprcode::pg_catalog.oid FROM pg_catalog.pg_operator
            WHERE oid = d.refobjid)
         WHEN 'pg_catalog.pg_cast'::pg_catalog.regclass THEN
           (SELECT castfunc FROM pg_catalog.pg_cast WHERE oid = d.refobjid)
       END,
       CASE WHEN d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass THEN
           (SELECT ROW(provolatile, prosecdef, prokind, proretset)::pg_catalog.text
            FROM pg_catalog.pg_proc WHERE oid = d.refobjid) END,
       d.refobjid IN (SELECT oid FROM rel) OR EXISTS (
           SELECT 1 FROM pg_catalog.pg_index i
           WHERE i.indexrelid = d.refobjid AND i.indrelid IN (SELECT oid FROM rel)
           OFFSET 0),
       d.refobjid IN (SELECT oid FROM own),
       d.refobjid IN (SELECT oid FROM typ),
       d.refobjid IN (SELECT oid FROM pg_catalog.pg_namespace
                      WHERE nspname = ANY (%(schemas)s::pg_catalog.text[]))
FROM d
"""

# the objects a caller names: (catalog, oid, kind, label)
GIVEN_OBJECTS = """
SELECT pg_catalog.to_regclass('pg_catalog.' || g.c)::pg_catalog.oid, g.o, g.k, g.l,
       0::pg_catalog.oid
FROM ROWS FROM (pg_catalog.unnest(%(g_class)s::pg_catalog.text[]),
                pg_catalog.unnest(%(g_oid)s::pg_catalog.oid[]),
                pg_catalog.unnest(%(g_kind)s::pg_catalog.text[]),
                pg_catalog.unnest(%(g_label)s::pg_catalog.text[])) AS g(c, o, k, l)"""

# the probe views, by name
VIEW_OBJECTS = """
SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass::pg_catalog.oid, r.oid, g.k, g.l,
       r.ev_class
FROM ROWS FROM (pg_catalog.unnest(%(views)s::pg_catalog.text[]),
                pg_catalog.unnest(%(g_kind)s::pg_catalog.text[]),
                pg_catalog.unnest(%(g_label)s::pg_catalog.text[])) AS g(v, k, l)
JOIN pg_catalog.pg_rewrite r ON r.ev_class = pg_catalog.to_regclass(g.v)"""

# the archive's types (the ones given in %(type_objects)s): their own records,
# a composite's attributes (on its relation), a domain's constraints
TYPE_OBJECTS = """
SELECT 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid, t.oid, 'type',
       'type ' || pg_catalog.format_type(t.oid, NULL), 0::pg_catalog.oid
FROM pg_catalog.unnest(%(type_objects)s::pg_catalog.text[]) n
JOIN pg_catalog.pg_type t ON t.oid = pg_catalog.to_regtype(n)
UNION ALL
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, t.typrelid, 'type',
       'type ' || pg_catalog.format_type(t.oid, NULL), t.typrelid
FROM pg_catalog.unnest(%(type_objects)s::pg_catalog.text[]) n
JOIN pg_catalog.pg_type t ON t.oid = pg_catalog.to_regtype(n) WHERE t.typrelid <> 0
UNION ALL
SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, c.oid, 'domain_check',
       'type ' || pg_catalog.format_type(c.contypid, NULL) || ', check '
       || pg_catalog.quote_ident(c.conname), 0::pg_catalog.oid
FROM pg_catalog.unnest(%(type_objects)s::pg_catalog.text[]) n
JOIN pg_catalog.pg_constraint c ON c.contypid = pg_catalog.to_regtype(n)"""

# Everything a table has that a definition can give it: the table (its partition
# key), defaults and generated columns, constraints, indexes, its own sequences,
# triggers, policies, extended statistics.
TABLE_OBJECTS = """
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid,
       pg_catalog.to_regclass(%(table)s)::pg_catalog.oid, 'table', 'the table',
       pg_catalog.to_regclass(%(table)s)::pg_catalog.oid
UNION ALL
SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass, ad.oid,
       CASE WHEN a.attgenerated <> '' THEN 'generated' ELSE 'default' END,
       'column ' || pg_catalog.quote_ident(a.attname), ad.adrelid
FROM pg_catalog.pg_attrdef ad JOIN pg_catalog.pg_attribute a
  ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
WHERE ad.adrelid = pg_catalog.to_regclass(%(table)s)
UNION ALL
SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, c.oid,
       CASE c.contype WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' ELSE 'constraint' END,
       'constraint ' || pg_catalog.quote_ident(c.conname), c.conrelid
FROM pg_catalog.pg_constraint c WHERE c.conrelid = pg_catalog.to_regclass(%(table)s)
UNION ALL
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, i.indexrelid, 'index',
       'index ' || pg_catalog.quote_ident(c.relname), i.indexrelid
FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = pg_catalog.to_regclass(%(table)s)
UNION ALL
SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, d.objid, 'sequence',
       'sequence ' || pg_catalog.quote_ident(s.relname), d.objid
FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid = d.objid
WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
  AND d.refobjid = pg_catalog.to_regclass(%(table)s) AND d.deptype IN ('a', 'i')
  AND s.relkind = 'S'
UNION ALL
SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, t.oid, 'trigger',
       'trigger ' || pg_catalog.quote_ident(t.tgname), t.tgrelid
FROM pg_catalog.pg_trigger t
WHERE t.tgrelid = pg_catalog.to_regclass(%(table)s) AND NOT t.tgisinternal
UNION ALL
SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass, p.oid, 'policy',
       'policy ' || pg_catalog.quote_ident(p.polname), p.polrelid
FROM pg_catalog.pg_policy p WHERE p.polrelid = pg_catalog.to_regclass(%(table)s)
UNION ALL
SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, x.oid, 'statistics',
       'statistics ' || pg_catalog.quote_ident(x.stxname), x.stxrelid
FROM pg_catalog.pg_statistic_ext x WHERE x.stxrelid = pg_catalog.to_regclass(%(table)s)"""

# Default btree and hash operator classes of the archive's types: what the server
# uses for them without being asked (unique indexes, ANALYZE, comparisons of arrays
# and rows of them).
OPCLASS_SQL = """
SELECT pg_catalog.format_type(opc.opcintype, NULL), am.amname,
       pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(opc.opcname),
       EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
               WHERE e.classid = 'pg_catalog.pg_opclass'::pg_catalog.regclass
                 AND e.objid = opc.oid AND e.deptype = 'e' OFFSET 0)
FROM pg_catalog.pg_opclass opc
JOIN pg_catalog.pg_am am ON am.oid = opc.opcmethod
JOIN pg_catalog.pg_namespace n ON n.oid = opc.opcnamespace
WHERE opc.opcdefault AND am.amname IN ('btree', 'hash')
  AND n.nspname <> 'pg_catalog'
  AND opc.opcintype IN (SELECT pg_catalog.to_regtype(x)::pg_catalog.oid
                        FROM pg_catalog.unnest(%(types)s::pg_catalog.text[]) x)
"""

# The same for the types of a table's columns (their element and base types too): a
# built-in type without a built-in default class (json, xml, point) may have one of a
# user's, which a unique index over an array of it or ANALYZE would call.
COLUMN_OPCLASS_SQL = """
SELECT pg_catalog.format_type(a.atttypid, NULL), am.amname,
       pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(opc.opcname),
       EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
               WHERE e.classid = 'pg_catalog.pg_opclass'::pg_catalog.regclass
                 AND e.objid = opc.oid AND e.deptype = 'e' OFFSET 0)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_opclass opc ON opc.opcdefault
     AND opc.opcintype IN (a.atttypid, t.typelem, t.typbasetype)
JOIN pg_catalog.pg_am am ON am.oid = opc.opcmethod AND am.amname IN ('btree', 'hash')
JOIN pg_catalog.pg_namespace n ON n.oid = opc.opcnamespace
WHERE a.attrelid = pg_catalog.to_regclass(%(table)s) AND a.attnum > 0
  AND NOT a.attisdropped AND n.nspname <> 'pg_catalog'
"""
