"""The package's shape (issue 18): the folders under ``src/dumpcodec`` name the layers
of DESIGN.md, no import cycle anywhere in it (imports inside functions and
``TYPE_CHECKING`` blocks included), and no module over 900 lines."""
from __future__ import annotations

from structure_helpers import SRC, cycles, import_graph, module_lines

#: DESIGN.md's layers, bottom up: the COPY codec, the schema layer, the archive, the
#: restore (dump.py and pump.py sit beside them), and the command line
LAYERS = ("copy", "schema", "archive", "restore", "cli")


def test_the_folders_name_the_layers():
    folders = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert set(LAYERS) <= folders, sorted(folders)


def test_no_import_cycle_anywhere():
    graph = import_graph()
    assert len(graph) > 60 and graph["dumpcodec.restore.run"], "the graph was not read"
    assert cycles(graph) == []


def test_no_module_over_900_lines():
    lines = module_lines()
    assert {n: k for n, k in lines.items() if k > 900} == {}
