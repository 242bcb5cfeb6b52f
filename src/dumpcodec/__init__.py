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
from typing import Any

from .copy import IMPL  # noqa: F401  (re-exported)

__version__ = "0.1.0"

# The library logs (per-table events, warnings) under "dumpcodec" and never prints:
# without a handler of the application's, nothing is shown (not even warnings,
# which Python's last-resort handler would otherwise write to stderr).
logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {
    "create_dump": "dump", "DumpSummary": "dump",
    "restore_dump": "restore", "RestoreSummary": "restore",
    "open_dump": "archive", "register_backend": "archive",
    "iter_table_infos": "archive", "parse_index_file": "archive",
    "capture_table": "schema", "resolve_selectors": "schema", "compare": "schema",
    "Selection": "schema",
}

__all__ = ["IMPL", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dumpcodec' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
