"""Statements for what ``pg_dump -t`` keeps beyond columns, keys and indexes.

Built from the structure of a :class:`~.model.TableDef` like the rest of :mod:`.ddl`
(identifiers quoted, strings as literals, the few expressions through the builder's
checked ``expr``), into these places of a :class:`~.ddl.DDLPlan`:

* ``table`` phase (before the data): storage parameters (``ALTER TABLE ... SET``,
  ``toast.*`` included), column storage / compression / statistics targets;
* ``post_data``: index storage parameters, extended statistics, replica identity,
  ``CLUSTER ON`` (they name indexes, which exist only then), and the comments on the
  keys, indexes and statistics created there (so ``--no-indexes`` leaves them out);
* ``comments``: comments on validated CHECKs, owned sequences, and on the constraints
  and indexes a partition inherits (as :class:`Step` objects: an index must be the
  table's); comments on foreign keys go with them into ``foreign_keys``;
* ``policies``: ``ENABLE`` / ``FORCE ROW LEVEL SECURITY`` and the policies.  Run in the
  table's transaction before COMMIT: a failure must fail the table, so that a table
  that had row-level security never commits without it;
* ``triggers``: after the data (a trigger must not fire during the restore), each one
  only when its function exists in the target (the archive never creates functions);
* ``privileges``: owner and grants, only on request (``--privileges``), each only
  when its roles exist (the archive never creates roles).

Statements of the last three phases are :class:`Step` objects (``sql.Composed`` with
what they need); :func:`run_steps` runs a phase's steps, checking those needs, and
returns the notes of what it left out and why.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from psycopg import sql

from ..errors import SchemaError
from .model import (COMPRESSION, REPLICA_IDENTITY, STATISTICS_KINDS, STORAGE,
                    TRIGGER_ENABLED, Grant, StorageParam, TableDef)

from .ddl_build import DDLPlan, Step, _Builder, _final


def _params(params: Sequence[StorageParam], prefix: str = "") -> sql.Composed:
    return sql.SQL(", ").join(
        sql.SQL("{}{} = {}").format(sql.SQL(prefix), sql.Identifier(p.name),
                                    sql.Literal(p.value)) for p in params)


def table_phase(b: "_Builder", t: TableDef) -> List[sql.Composed]:
    """Storage parameters and column settings, right after CREATE TABLE."""
    out = []
    where = b.where
    params = [_params(t.options)] if t.options else []
    if t.toast_options:
        params.append(_params(t.toast_options, "toast."))
    if params:
        out.append(_final(sql.SQL("ALTER TABLE {} SET ({})").format(
            b.table_ident, sql.SQL(", ").join(params)), "ALTER TABLE", where))
    for c in t.columns:
        col = sql.SQL("ALTER TABLE {} ALTER COLUMN {} ").format(b.table_ident,
                                                                sql.Identifier(c.name))
        if c.storage is not None:
            out.append(_final(col + sql.SQL("SET STORAGE " + STORAGE[c.storage]),
                              "ALTER TABLE", where))
        if c.compression is not None:
            out.append(_final(col + sql.SQL("SET COMPRESSION " + COMPRESSION[c.compression]),
                              "ALTER TABLE", where))
        if c.options:
            out.append(_final(col + sql.SQL("SET ({})").format(_params(c.options)),
                              "ALTER TABLE", where))
        if c.statistics is not None:
            out.append(_final(col + sql.SQL("SET STATISTICS {}").format(
                sql.Literal(int(c.statistics))), "ALTER TABLE", where))
    return out


def post_data_phase(b: "_Builder", t: TableDef, own) -> List[sql.Composed]:
    """Index parameters, extended statistics, replica identity, CLUSTER ON."""
    out = []
    where = b.where
    for name, params in ([(c.name, c.index_options) for c in own(b, t.constraints)]
                         + [(i.name, i.options) for i in own(b, t.indexes)]):
        if params:
            out.append(_final(sql.SQL("ALTER INDEX {} SET ({})").format(
                sql.Identifier(b.schema, name), _params(params)), "ALTER TABLE", where))
    for st in t.statistics:
        what = f"statistics {st.name!r}"
        items = [sql.Identifier(c) for c in st.columns]
        items += [sql.SQL("({})").format(b.expr(e, f"{what} expression", context="statistics"))
                  for e in st.expressions]
        kinds = [STATISTICS_KINDS[k] for k in st.kinds if k != "e"]
        out.append(_final(sql.SQL("CREATE STATISTICS {} {}ON {} FROM {}").format(
            b.ident(st.schema, st.name),
            sql.SQL("({}) ").format(sql.SQL(", ").join(map(sql.SQL, kinds)))
            if kinds and len(items) > 1 else sql.SQL(""),
            sql.SQL(", ").join(items), b.table_ident), "CREATE STATISTICS", where))
        if st.target is not None:
            out.append(_final(sql.SQL("ALTER STATISTICS {} SET STATISTICS {}").format(
                b.ident(st.schema, st.name), sql.Literal(int(st.target))),
                "ALTER STATISTICS", where))
    if t.replica_identity != "d":
        ident = sql.SQL(REPLICA_IDENTITY[t.replica_identity])
        if t.replica_identity == "i":
            if not t.replica_identity_index:
                raise SchemaError(f"{where}: replica identity index without a name")
            ident = sql.SQL("USING INDEX {}").format(sql.Identifier(t.replica_identity_index))
        out.append(_final(sql.SQL("ALTER TABLE {} REPLICA IDENTITY {}").format(
            b.table_ident, ident), "ALTER TABLE", where))
    if t.clustered_index:
        out.append(_final(sql.SQL("ALTER TABLE {} CLUSTER ON {}").format(
            b.table_ident, sql.Identifier(t.clustered_index)), "ALTER TABLE", where))
    return out


def comments_phase(b: "_Builder", t: TableDef, own) -> Tuple[
        List[sql.Composed], List[sql.Composed], List[Tuple[str, sql.Composed]]]:
    """COMMENTs on constraints, indexes, owned sequences and statistics, as (those for
    ``post_data``, where their objects are created; those for ``comments``; those on
    foreign keys, which exist only after the ``foreign_keys`` phase).  Inherited
    constraints and indexes too (a partition's copies are objects of their own, with
    comments of their own): as :class:`Step` objects of the ``comments`` phase, left out
    with a note when the object is not the table's."""
    post, out, fk = [], [], []
    where = b.where
    mine = {id(x) for x in own(b, t.constraints)} | {id(x) for x in own(b, t.indexes)}
    for c in t.constraints:
        if c.comment is None:
            continue
        stmt = _final(sql.SQL("COMMENT ON CONSTRAINT {} ON {} IS {}").format(
            sql.Identifier(c.name), b.table_ident, sql.Literal(c.comment)), "COMMENT", where)
        if c.kind == "foreign_key":
            fk.append((c.name, stmt))
        elif id(c) not in mine:
            out.append(Step([stmt], f"comment on constraint {c.name!r}"))
        elif c.kind == "check" and c.validated:
            out.append(stmt)          # created with the table
        else:
            post.append(stmt)         # keys, exclusions, NOT VALID checks: post_data
    for i in t.indexes:
        if i.comment is None:
            continue
        index = sql.Identifier(b.schema, i.name)
        stmt = _final(sql.SQL("COMMENT ON INDEX {} IS {}").format(
            index, sql.Literal(i.comment)), "COMMENT", where)
        if id(i) in mine:
            post.append(stmt)
        else:    # not created by this plan: it must be the table's
            out.append(Step([stmt], f"comment on index {i.name!r}",
                            index_of=(index, b.table_ident)))
    identity_cols = {c.name for c in t.columns if c.identity is not None}
    for s in t.sequences:
        # only those the plan creates (serials; identities of identity columns)
        created = not s.identity or s.column in identity_cols
        if s.comment is not None and created:
            out.append(_final(sql.SQL("COMMENT ON SEQUENCE {} IS {}").format(
                b.ident(s.schema, s.name), sql.Literal(s.comment)), "COMMENT", where))
    for st in t.statistics:
        if st.comment is not None:
            post.append(_final(sql.SQL("COMMENT ON STATISTICS {} IS {}").format(
                b.ident(st.schema, st.name), sql.Literal(st.comment)), "COMMENT", where))
    return post, out, fk


_POLICY_CMD = {"all": "ALL", "select": "SELECT", "insert": "INSERT", "update": "UPDATE",
               "delete": "DELETE"}


def policies_phase(b: "_Builder", t: TableDef) -> List[sql.Composed]:
    """RLS switches and policies: every step required (see the module doc)."""
    out: List[sql.Composed] = []
    where = b.where
    if t.rls_enabled:
        out.append(Step([_final(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(
            b.table_ident), "ALTER TABLE", where)], "row-level security", required=True))
    if t.rls_forced:
        out.append(Step([_final(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(
            b.table_ident), "ALTER TABLE", where)], "row-level security", required=True))
    for p in t.policies:
        what = f"policy {p.name!r}"
        parts = [sql.SQL("CREATE POLICY {} ON {} AS {} FOR {} TO {}").format(
            sql.Identifier(p.name), b.table_ident,
            sql.SQL("PERMISSIVE" if p.permissive else "RESTRICTIVE"),
            sql.SQL(_POLICY_CMD[p.command]),
            sql.SQL(", ").join(map(sql.Identifier, p.roles)) if p.roles
            else sql.SQL("PUBLIC"))]
        if p.using is not None:
            parts.append(sql.SQL(" USING {}").format(
                b.expr(p.using, f"{what} USING", context="policy")))
        if p.with_check is not None:
            parts.append(sql.SQL(" WITH CHECK {}").format(
                b.expr(p.with_check, f"{what} WITH CHECK", context="policy")))
        out.append(Step([_final(sql.Composed(parts), "CREATE POLICY", where)], what,
                        roles=p.roles, required=True))
        if p.comment is not None:
            out.append(Step([_final(sql.SQL("COMMENT ON POLICY {} ON {} IS {}").format(
                sql.Identifier(p.name), b.table_ident, sql.Literal(p.comment)),
                "COMMENT", where)], what, required=True))
    return out


_TIMING = {"before": "BEFORE", "after": "AFTER", "instead of": "INSTEAD OF"}


def triggers_phase(b: "_Builder", t: TableDef, own) -> List[sql.Composed]:
    out: List[sql.Composed] = []
    where = b.where
    for tr in own(b, t.triggers):
        what = f"trigger {tr.name!r}"
        events = []
        for e in tr.events:
            ev = sql.SQL(e.upper())
            if e == "update" and tr.columns:
                ev = sql.SQL("UPDATE OF {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, tr.columns)))
            events.append(ev)
        parts = [sql.SQL("CREATE {}TRIGGER {} {} {} ON {}").format(
            sql.SQL("CONSTRAINT " if tr.constraint else ""), sql.Identifier(tr.name),
            sql.SQL(_TIMING[tr.timing]), sql.SQL(" OR ").join(events), b.table_ident)]
        if tr.constraint:
            parts.append(sql.SQL(" DEFERRABLE INITIALLY DEFERRED" if tr.deferred else
                                 " DEFERRABLE INITIALLY IMMEDIATE" if tr.deferrable else
                                 " NOT DEFERRABLE"))
        refs = []
        if tr.old_table:
            refs.append(sql.SQL("OLD TABLE AS {}").format(sql.Identifier(tr.old_table)))
        if tr.new_table:
            refs.append(sql.SQL("NEW TABLE AS {}").format(sql.Identifier(tr.new_table)))
        if refs:
            parts.append(sql.SQL(" REFERENCING {}").format(sql.SQL(" ").join(refs)))
        parts.append(sql.SQL(" FOR EACH ROW" if tr.for_each_row else " FOR EACH STATEMENT"))
        if tr.when is not None:
            parts.append(sql.SQL(" WHEN {}").format(
                b.expr(tr.when, f"{what} WHEN", context="trigger_when")))
        parts.append(sql.SQL(" EXECUTE FUNCTION {}({})").format(
            sql.Identifier(tr.function_schema, tr.function_name),
            sql.SQL(", ").join(map(sql.Literal, tr.arguments))))
        fn = [(tr.function_schema, tr.function_name)]
        out.append(Step([_final(sql.Composed(parts), "CREATE TRIGGER", where)], what, fn))
        if TRIGGER_ENABLED[tr.enabled]:
            out.append(Step([_final(sql.SQL("ALTER TABLE {} {} TRIGGER {}").format(
                b.table_ident, sql.SQL(TRIGGER_ENABLED[tr.enabled]),
                sql.Identifier(tr.name)), "ALTER TABLE", where)], what, fn))
        if tr.comment is not None:
            out.append(Step([_final(sql.SQL("COMMENT ON TRIGGER {} ON {} IS {}").format(
                sql.Identifier(tr.name), b.table_ident, sql.Literal(tr.comment)),
                "COMMENT", where)], what, fn))
    return out


def _grant_steps(b: "_Builder", acl: List[Grant], owner: Optional[str],
                 column: Optional[str], where: str) -> List[sql.Composed]:
    """GRANTs reproducing ``acl``, grouped as aclitems are (grantee, grantor, option)."""
    groups: dict = {}
    for g in acl:
        key = (g.grantee, g.grantor, g.grantable)
        groups.setdefault(key, []).append(g.privilege)
    out: List[sql.Composed] = []
    on = (sql.SQL("({}) ON TABLE {}").format(sql.Identifier(column), b.table_ident)
          if column is not None else sql.SQL(" ON TABLE {}").format(b.table_ident))
    for (grantee, grantor, grantable), privs in groups.items():
        to = sql.Identifier(grantee) if grantee is not None else sql.SQL("PUBLIC")
        by = (sql.SQL(" GRANTED BY {}").format(sql.Identifier(grantor))
              if grantor is not None and grantor != owner else sql.SQL(""))
        stmt = sql.SQL("GRANT {}{} TO {}{}{}").format(
            sql.SQL(", ").join(map(sql.SQL, privs)), on, to,
            sql.SQL(" WITH GRANT OPTION" if grantable else ""), by)
        label = ("column " + repr(column) + " " if column else "") + \
            f"privilege(s) {', '.join(privs)} of {grantee or 'PUBLIC'}"
        roles = [grantee, grantor if grantor != owner else None]
        step = Step([_final(stmt, "GRANT", where)], label, roles=roles)
        step.owners = grantee is not None and grantee == owner
        out.append(step)
    return out


def privileges_phase(b: "_Builder", t: TableDef) -> List[sql.Composed]:
    """Owner, then the table's and the columns' ACLs (as pg_dump: REVOKE the default,
    GRANT what the ACL holds)."""
    out: List[sql.Composed] = []
    where = b.where
    if t.owner is not None:
        out.append(Step([_final(sql.SQL("ALTER TABLE {} OWNER TO {}").format(
            b.table_ident, sql.Identifier(t.owner)), "ALTER TABLE", where)],
            f"owner {t.owner}", roles=[t.owner]))
        out[-1].owners = True
    if t.acl is not None:
        # the owner's implicit privileges off, then exactly what the ACL says
        out.append(Step([_final(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(
            b.table_ident, sql.Identifier(t.owner) if t.owner else sql.SQL("CURRENT_USER")),
            "GRANT", where)], "default privileges of the owner",
            roles=[t.owner] if t.owner else []))
        out[-1].owners = True
        out += _grant_steps(b, t.acl, t.owner, None, where)
    for c in t.columns:
        if c.acl:
            out += _grant_steps(b, c.acl, t.owner, c.name, where)
    return out


def add_to_plan(plan: "DDLPlan", b: "_Builder", t: TableDef, own) -> None:
    """Fill the phases above into ``plan`` (called by :func:`~.ddl.ddl_plan`)."""
    plan.table.extend(table_phase(b, t))
    plan.post_data.extend(post_data_phase(b, t, own))
    post, comments, fk_comments = comments_phase(b, t, own)
    plan.post_data.extend(post)
    plan.comments.extend(comments)
    for name, stmt in fk_comments:
        plan.foreign_keys.append(stmt)
        if name in plan.foreign_key_steps:
            plan.foreign_key_steps[name].comment = stmt
    plan.policies.extend(policies_phase(b, t))
    plan.triggers.extend(triggers_phase(b, t, own))
    plan.privileges.extend(privileges_phase(b, t))


def privileges_note(plan: "DDLPlan") -> Optional[str]:
    """What a restore without ``privileges`` leaves out (None: nothing but the owner,
    which pg_restore --no-owner users expect to lose silently)."""
    grants = [s.what for s in plan.privileges if isinstance(s, Step) and not s.owners]
    if not grants:
        return None
    return ("privileges not restored (restore with --privileges to grant them): "
            + "; ".join(grants))
