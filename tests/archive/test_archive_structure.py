"""The archive package's shape: no import cycle (imports inside functions included),
no module over ~900 lines, every public name of ``dumpcodec.archive`` still there.

The import graph is read from the sources (every ``import`` statement anywhere in a
module, inside functions and ``if TYPE_CHECKING:`` blocks too), not from what Python
happened to import, so that an import hidden in a function cannot hide a cycle.
"""
from __future__ import annotations

import dumpcodec
import dumpcodec.archive
from structure_helpers import cycles, import_graph, module_lines

PACKAGE = "dumpcodec.archive"


def test_the_import_graph_is_read_from_the_sources():
    # the checker must see what it is meant to see, or the next test proves nothing
    graph = import_graph()
    assert f"{PACKAGE}.reader" in graph[f"{PACKAGE}.registry"]
    assert f"{PACKAGE}.manifest" in graph[f"{PACKAGE}.walker"]   # from . import manifest
    assert "dumpcodec.copy" in graph[f"{PACKAGE}.writer"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_through_the_archive_package():
    graph = import_graph()
    bad = [c for c in cycles(graph) if any(m.startswith(PACKAGE) for m in c)]
    assert bad == []


def test_no_archive_module_over_900_lines():
    long = {n: lines for n, lines in module_lines().items() if n.startswith(PACKAGE)}
    assert {n: lines for n, lines in long.items() if lines > 900} == {}


def test_public_names_still_there():
    # what dumpcodec.archive exported before base.py was split (and the lazy
    # names of dumpcodec itself)
    names = ["open_dump", "register_backend", "backends", "Backend", "DEFAULT_BACKEND",
             "DumpReader", "DumpWriter", "TableWriter", "TableInfo", "MemberInfo",
             "TableInfoTuple", "VerifyReport", "iter_table_infos", "parse_index_file",
             "format_index_line", "FORMAT_VERSION", "DEFAULT_CHUNK_SIZE",
             "DEFAULT_MAX_MEMBER_SIZE", "DEFAULT_MAX_META_SIZE", "TarReader", "TarWriter",
             "GzipReader", "GzipWriter", "ZstdReader", "ZstdWriter", "DachsReader"]
    for n in names:
        assert n in dumpcodec.archive.__all__
        assert getattr(dumpcodec.archive, n) is not None
    for n in ("open_dump", "register_backend", "iter_table_infos", "parse_index_file"):
        assert getattr(dumpcodec, n) is getattr(dumpcodec.archive, n)
    assert list(dumpcodec.archive.backends) == ["zstd", "gzip", "tar", "dachs"]
