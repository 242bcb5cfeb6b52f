"""dumpcodec: dump PostgreSQL tables into streamable archives and restore them.

The COPY BINARY codec has two implementations with one API: the Cython core
(``dumpcodec._fastcopy``) and the pure-Python twin (``dumpcodec.copy.pure``), both
behind the switch :mod:`dumpcodec.copy`.
``DUMPCODEC_IMPL=c|python`` chooses; unset, the C core is used when it is built.
``dumpcodec.IMPL`` says which one is active.

The main entry points are importable from here (loaded on first use, so that
``import dumpcodec`` stays cheap)::

    from dumpcodec import create_dump, restore_dump, open_dump
"""
from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from .copy import IMPL  # noqa: F401  (re-exported)

from ._version import __version__  # noqa: F401  (re-exported)

# The library logs (per-table events, warnings) under "dumpcodec" and never prints:
# without a handler of the application's, nothing is shown (not even warnings,
# which Python's last-resort handler would otherwise write to stderr).
logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {
    # dump and restore (DaCHS's createDump, restoreDump)
    "create_dump": "dump", "DumpSummary": "dump", "TableDumpStats": "dump",
    "restore_dump": "restore", "RestoreSummary": "restore",
    "TableRestoreResult": "restore",
    # the archive (icat's open_dumpfile, register_backend, Backends, the reader and
    # writer base classes; DaCHS's iterTableInfos, parseIndexFile)
    "open_dump": "archive", "register_backend": "archive", "backends": "archive",
    "DumpReader": "archive", "DumpWriter": "archive", "TableInfo": "archive",
    "iter_table_infos": "archive", "parse_index_file": "archive",
    # table definitions and selection (DaCHS's getTablesForIds, iterDbTables)
    "capture_table": "schema", "resolve_selectors": "schema", "compare": "schema",
    "Selection": "schema", "get_tables_for_ids": "schema", "iter_db_tables": "schema",
    "TableDef": "schema",
    # the command line (DaCHS's main, create, ls, load)
    "main": "cli",
}

__all__ = ["IMPL", "__version__", *_LAZY]

if TYPE_CHECKING:   # what the lazy names are, for type checkers (mypy --strict)
    from .archive import (  # noqa: F401DumpReader as DumpReader, DumpWriter as DumpWriter,
                          TableInfo as TableInfo, backends as backends,
                          iter_table_infos as iter_table_infos, open_dump as open_dump,
                          parse_index_file as parse_index_file,
                          register_backend as register_backend)
    from .cli import main as main  # noqa: F401
    from .dump import (  # noqa: F401DumpSummary as DumpSummary, TableDumpStats as TableDumpStats,
                       create_dump as create_dump)
    from .restore import (  # noqa: F401RestoreSummary as RestoreSummary,
                          TableRestoreResult as TableRestoreResult,
                          restore_dump as restore_dump)
    from .schema import (  # noqa: F401Selection as Selection, TableDef as TableDef,
                         capture_table as capture_table, compare as compare,
                         get_tables_for_ids as get_tables_for_ids,
                         iter_db_tables as iter_db_tables,
                         resolve_selectors as resolve_selectors)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dumpcodec' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
