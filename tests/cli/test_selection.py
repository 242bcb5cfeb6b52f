"""pg_dump 17's selection switches and filter files, on a real server.

The cases are the examples of pg_dump's documentation (``-t mytab``, ``-t 'detroit.emp*'
-T detroit.employee_log``, ``-n 'east*gsm' -n 'west*gsm' -N '*test*'``, the same with
``-n '(east|west)*gsm'``, ``-T 'ts_*'``, a quoted mixed-case name, and the filter file
``include table mytable*`` / ``exclude table mytable2``), run through the command line
and through the library, plus ``create_dump(dsn, None, path)`` (every user table).
"""
from __future__ import annotations

import pytest

import conftest
from dumpcodec import create_dump, open_dump, restore_dump
from dumpcodec.cli import main
from dumpcodec.errors import NoMatchError, SelectorError
from dumpcodec.schema import Selection, parse_filter, resolve_selection

SETUP = """
CREATE SCHEMA detroit; CREATE SCHEMA eastgsm; CREATE SCHEMA east_x_gsm;
CREATE SCHEMA westgsm; CREATE SCHEMA west_test_gsm; CREATE SCHEMA northgsm;
CREATE SCHEMA "Other Schema";
CREATE TABLE public.mytab (a int); CREATE TABLE public.mytable1 (a int);
CREATE TABLE public.mytable2 (a int); CREATE TABLE public.mytable33 (a int);
CREATE TABLE public.ts_one (a int); CREATE TABLE public.ts_two (a int);
CREATE TABLE public."MixedCaseName" (a int);
CREATE TABLE detroit.emp (a int); CREATE TABLE detroit.employee_log (a int);
CREATE TABLE detroit.employees (a int); CREATE TABLE detroit.dept (a int);
CREATE TABLE eastgsm.t (a int); CREATE TABLE east_x_gsm.t (a int);
CREATE TABLE westgsm.t (a int); CREATE TABLE west_test_gsm.t (a int);
CREATE TABLE northgsm.t (a int); CREATE TABLE "Other Schema".t (a int);
CREATE TABLE public.parted (k int) PARTITION BY RANGE (k);
CREATE TABLE public.parted_1 PARTITION OF public.parted FOR VALUES FROM (0) TO (10);
CREATE TABLE public.parted_2 PARTITION OF public.parted FOR VALUES FROM (10) TO (20);
CREATE SEQUENCE detroit.free_seq START 40;
INSERT INTO public.mytab VALUES (1), (2), (3);
INSERT INTO detroit.emp VALUES (1), (2);
INSERT INTO public.parted VALUES (1), (15);
"""

ALL = {"public.mytab", "public.mytable1", "public.mytable2", "public.mytable33",
       "public.ts_one", "public.ts_two", "public.MixedCaseName", "detroit.emp",
       "detroit.employee_log", "detroit.employees", "detroit.dept", "eastgsm.t",
       "east_x_gsm.t", "westgsm.t", "west_test_gsm.t", "northgsm.t", "Other Schema.t",
       "public.parted", "public.parted_1", "public.parted_2"}


@pytest.fixture(scope="module")
def seldb(pg_server):
    db = conftest._create_db(pg_server)
    try:
        db.execute(SETUP)
        yield db
    finally:
        conftest._drop_db(db)


def _dumped(path) -> set:
    with open_dump(str(path)) as r:
        return {t.table_id for t in r.tables()}


def _cli_tables(seldb, tmp_path, *argv, expect=0):
    out = tmp_path / "sel.dcz"
    if out.exists():
        out.unlink()
    rc = main(["create", "--dsn", seldb.dsn, "-q", "-o", str(out), *argv])
    assert rc == expect
    return _dumped(out) if rc == 0 else None


# -- the library -------------------------------------------------------------------------

def test_create_dump_none_dumps_every_user_table(seldb, tmp_path):
    path = tmp_path / "all.dcz"
    summary = create_dump(seldb.dsn, None, str(path))
    assert _dumped(path) == ALL
    assert {t.table_id for t in summary.tables} == ALL
    with open_dump(str(path)) as r:
        rows = {t.table_id: t.rows for t in r.tables()}
        # free-standing sequences of the schemas taken whole travel in the info
        seqs = (r.info.get("info") or {}).get("sequences") or []
        assert [(s["schema"], s["name"]) for s in seqs] == [("detroit", "free_seq")]
    assert rows["public.mytab"] == 3 and rows["public.parted_1"] == 1


@pytest.mark.parametrize("selection, expected", [
    (Selection(tables=["mytab"]), {"public.mytab"}),
    (Selection(tables=["detroit.emp*"], exclude_tables=["detroit.employee_log"]),
     {"detroit.emp", "detroit.employees"}),
    (Selection(schemas=["east*gsm", "west*gsm"], exclude_schemas=["*test*"]),
     {"eastgsm.t", "east_x_gsm.t", "westgsm.t"}),
    (Selection(schemas=["(east|west)*gsm"], exclude_schemas=["*test*"]),
     {"eastgsm.t", "east_x_gsm.t", "westgsm.t"}),
    (Selection(exclude_tables=["ts_*"]), ALL - {"public.ts_one", "public.ts_two"}),
    (Selection(tables=['"MixedCaseName"']), {"public.MixedCaseName"}),
    (Selection(schemas=['"Other Schema"']), {"Other Schema.t"}),
    # -n and -N do not apply to what -t names (pg_dump's rule)
    (Selection(tables=["detroit.dept"], exclude_schemas=["detroit"]), {"detroit.dept"}),
    # a partitioned table excluded goes with its partitions
    (Selection(schemas=["public"], exclude_tables=["parted", "mytable*", "ts_*"]),
     {"public.mytab", "public.MixedCaseName"}),
])
def test_pg_dump_documentation_examples(seldb, selection, expected):
    with seldb.connect() as conn:
        got = resolve_selection(conn, selection)
    # the partitioned parent stands for its partitions (the dump adds them)
    names = {f"{r.schema}.{r.name}" for r in got.tables}
    want = {e for e in expected if e not in ("public.parted_1", "public.parted_2")}
    assert names == want


def test_strict_names_and_nothing_matched(seldb):
    with seldb.connect() as conn:
        got = resolve_selection(conn, Selection(tables=["mytab", "nosuch"]))
        assert [r.name for r in got.tables] == ["mytab"]
        assert got.unmatched == ["-t nosuch"]
        with pytest.raises(NoMatchError, match="no matching tables were found for "
                                               "-t nosuch"):
            resolve_selection(conn, Selection(tables=["mytab", "nosuch"],
                                              strict_names=True))
        with pytest.raises(NoMatchError, match="-n nope"):
            resolve_selection(conn, Selection(schemas=["nope"]))
        # an exclusion that matches nothing is no error, even strict (pg_dump's rule)
        got = resolve_selection(conn, Selection(tables=["mytab"], exclude_tables=["zz*"],
                                                strict_names=True))
        assert [r.name for r in got.tables] == ["mytab"]
        # the pattern's regex is checked before the server sees it
        with pytest.raises(SelectorError, match="not a valid regular expression"):
            resolve_selection(conn, Selection(schemas=["(east"]))


def test_a_string_is_not_a_list_of_selectors(seldb, tmp_path):
    with pytest.raises(TypeError, match="not the string 'mytab'"):
        create_dump(seldb.dsn, "mytab", str(tmp_path / "x.dcz"))
    assert not (tmp_path / "x.dcz").exists()


# -- the filter file ------------------------------------------------------------------------

def test_filter_syntax():
    text = ('# the tables starting with mytable, but not mytable2\n'
            '\n'
            'include table mytable*\n'
            '   EXCLUDE   Table   mytable2    # a comment after the pattern\n'
            'include schema "Other Schema"\n'
            'exclude table_data "we ""quote""".x\n'
            'include table "multi\n'
            'line"\n'
            'include table_and_children parted\n')
    rules = parse_filter(text, "f.txt")
    assert [(r.command, r.kind, r.pattern, r.where) for r in rules] == [
        ("include", "table", "mytable*", "f.txt:3"),
        ("exclude", "table", "mytable2", "f.txt:4"),
        ("include", "schema", '"Other Schema"', "f.txt:5"),
        ("exclude", "table_data", '"we ""quote""".x', "f.txt:6"),
        ("include", "table", '"multi\nline"', "f.txt:7"),
        ("include", "table_and_children", "parted", "f.txt:9"),
    ]


@pytest.mark.parametrize("line, message", [
    ("copy table t", r"f.txt:2: expected 'include' or 'exclude', not 'copy'"),
    ("include", r"f.txt:2: missing object type after 'include'"),
    ("include table", r"f.txt:2: missing object name pattern"),
    ("include table # only a comment", r"f.txt:2: missing object name pattern"),
    ("include table_data t", r"f.txt:2: 'table_data' can only be used with 'exclude'"),
    ("include function f()", r"f.txt:2: object type 'function' is not supported here"),
    ("include extension hstore", r"f.txt:2: object type 'extension' is not supported"),
    ("include tables t", r"f.txt:2: unknown object type 'tables'"),
    ('include table "open', r"f.txt:2: unterminated double quote"),
])
def test_filter_errors_name_file_and_line(line, message):
    with pytest.raises(SelectorError, match=message):
        parse_filter("# first line\n" + line + "\n", "f.txt")


def test_filter_file_through_the_cli(seldb, tmp_path):
    # pg_dump's documentation: every table starting with mytable except mytable2
    f = tmp_path / "filter.txt"
    f.write_text("include table mytable*\nexclude table mytable2\n")
    assert _cli_tables(seldb, tmp_path, "--filter", str(f)) == {
        "public.mytable1", "public.mytable33"}
    # combined with switches, and a second file
    g = tmp_path / "more.txt"
    g.write_text("include schema detroit\n")
    assert _cli_tables(seldb, tmp_path, "-n", "eastgsm", "--filter", str(g),
                       "-T", "detroit.emp*") == {"eastgsm.t", "detroit.dept"}


def test_unmatched_filter_line_is_a_warning_or_with_strict_names_an_error(
        seldb, tmp_path, capsys):
    f = tmp_path / "filter.txt"
    f.write_text("include table mytab\ninclude table nosuch_*\n")
    assert _cli_tables(seldb, tmp_path, "--filter", str(f)) == {"public.mytab"}
    err = capsys.readouterr().err
    assert (f"warning: no matching tables were found for include table nosuch_* "
            f"({f}:2)") in err
    assert _cli_tables(seldb, tmp_path, "--filter", str(f), "--strict-names",
                       expect=2) is None
    err = capsys.readouterr().err
    assert f"include table nosuch_* ({f}:2)" in err and "Traceback" not in err
    assert not (tmp_path / "sel.dcz").exists()
    bad = tmp_path / "bad.txt"
    bad.write_text("include table a\nexclude index i\n")
    assert _cli_tables(seldb, tmp_path, "--filter", str(bad), expect=2) is None
    assert f"{bad}:2: object type 'index' is not supported" in capsys.readouterr().err


@pytest.mark.parametrize("argv, expected", [
    (["-t", "mytab"], {"public.mytab"}),
    (["-t", "detroit.emp*", "-T", "detroit.employee_log"],
     {"detroit.emp", "detroit.employees"}),
    (["-n", "east*gsm", "-n", "west*gsm", "-N", "*test*"],
     {"eastgsm.t", "east_x_gsm.t", "westgsm.t"}),
    (["-n", "(east|west)*gsm", "-N", "*test*"], {"eastgsm.t", "east_x_gsm.t", "westgsm.t"}),
    (["-T", "ts_*"], ALL - {"public.ts_one", "public.ts_two"}),
    (["-t", '"MixedCaseName"'], {"public.MixedCaseName"}),
    (["-t", "mytab", "-t", "nosuch"], {"public.mytab"}),
])
def test_cli_switches(seldb, tmp_path, argv, expected):
    assert _cli_tables(seldb, tmp_path, *argv) == expected


def test_cli_strict_names(seldb, tmp_path, capsys):
    assert _cli_tables(seldb, tmp_path, "-t", "mytab", "-t", "nosuch",
                       "--strict-names", expect=2) is None
    assert "no matching tables were found for -t nosuch" in capsys.readouterr().err
    # nothing at all: an error without --strict-names too
    assert _cli_tables(seldb, tmp_path, "-n", "nope", expect=2) is None
    assert "no matching tables were found" in capsys.readouterr().err


def test_exclude_table_data_keeps_the_definition(seldb, make_db, tmp_path):
    path = tmp_path / "d.dcz"
    rc = main(["create", "--dsn", seldb.dsn, "-q", "-o", str(path), "-t", "mytab",
               "-t", "detroit.emp", "-t", "parted", "--exclude-table-data", "mytab",
               "--exclude-table-data", "parted"])
    assert rc == 0
    with open_dump(str(path)) as r:
        info = {t.table_id: t for t in r.tables()}
    assert info["public.mytab"].rows == 0 and info["public.mytab"].extra["data"] is False
    assert info["public.parted_1"].extra["data"] is False
    assert info["detroit.emp"].rows == 2 and "data" not in info["detroit.emp"].extra
    target = make_db()
    summary = restore_dump(target.dsn, str(path))
    assert not summary.failed
    assert target.execute("SELECT count(*) FROM public.mytab")[0][0] == 0
    assert target.execute("SELECT count(*) FROM public.parted")[0][0] == 0
    assert target.execute("SELECT count(*) FROM detroit.emp")[0][0] == 2


# -- load ------------------------------------------------------------------------------------

def test_load_selection_switches(seldb, make_db, tmp_path, capsys):
    path = tmp_path / "all.dcz"
    create_dump(seldb.dsn, None, str(path))

    def loaded(*argv, expect=0):
        target = make_db()
        rc = main(["load", str(path), "--dsn", target.dsn, "-q", *argv])
        assert rc == expect
        rows = target.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname "
            "NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'")
        return {r[0] for r in rows}

    assert loaded("-n", "detroit", "-T", "detroit.employee*") == {"detroit.emp",
                                                                  "detroit.dept"}
    # the archive's free sequences go with the schemas the selection takes
    target = make_db()
    assert main(["load", str(path), "--dsn", target.dsn, "-q", "-n", "detroit"]) == 0
    assert target.execute("SELECT count(*) FROM pg_class WHERE relname = 'free_seq'")[0][0] == 1
    target = make_db()
    assert main(["load", str(path), "--dsn", target.dsn, "-q", "-n", "eastgsm"]) == 0
    assert target.execute("SELECT count(*) FROM pg_class WHERE relname = 'free_seq'")[0][0] == 0
    assert loaded("-n", "(east|west)*gsm", "-N", "*test*") == {
        "eastgsm.t", "east_x_gsm.t", "westgsm.t"}
    # pg_restore's rule: -t and -n together take what both match
    assert loaded("-t", "*.t", "-n", "north*") == {"northgsm.t"}
    f = tmp_path / "f.txt"
    f.write_text("include schema detroit\nexclude table emp*\ninclude schema nope\n")
    assert loaded("--filter", str(f)) == {"detroit.dept"}
    assert "no matching tables were found for include schema nope" in \
        capsys.readouterr().err
    assert loaded("--filter", str(f), "--strict-names", expect=2) == set()
    bad = tmp_path / "bad.txt"
    bad.write_text("exclude table_data x\n")
    assert loaded("--filter", str(bad), expect=2) == set()
    assert "'table_data' is not supported here" in capsys.readouterr().err


def test_help_shows_each_flag_with_an_example(capsys):
    wanted = {
        "create": ["-n 'east*gsm'", "-N '*test*'", "-T 'ts_*'",
                   "--exclude-table-data 'audit.*'", "--filter filter.txt",
                   "--strict-names", "--format text", "--json", "dumpcodec create -o"],
        "load": ["load shop.dcz -n app -N 'app_*' -T 'app.log*'", "--filter filter.txt",
                 "--strict-names", "--json > report.json", "--list",
                 "--schema-only -f schema.sql", "--schema-only -f - | psql",
                 "NOT checked on"],
        "verify": ["verify --json backup.dump"],
    }
    for cmd, examples in wanted.items():
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for example in examples:
            assert " ".join(example.split()) in text, (cmd, example)
