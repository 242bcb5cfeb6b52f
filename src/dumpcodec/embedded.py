"""Start an embedded PostgreSQL server (the ``embedded`` extra, ``pgserver``).

Used by ``dumpcodec demo``, the benchmarks and the test suite where no server is
configured.  pgserver ships its own PostgreSQL binaries and runs them as a
dedicated system user when started as root.
"""
from __future__ import annotations

import os
import tempfile
from typing import Optional

DEFAULT_PGDATA = os.path.join(tempfile.gettempdir(), "dumpcodec-pgserver")


def start_embedded(pgdata: Optional[str] = None, cleanup: bool = True) -> str:
    """Start (or reuse) an embedded server on ``pgdata``; return its conninfo URI.

    With ``cleanup`` the server stops when the interpreter exits.
    """
    try:
        import pgserver
    except ImportError as exc:
        raise RuntimeError(
            "no embedded PostgreSQL: install the 'embedded' extra "
            "(pip install 'dumpcodec[embedded]')") from exc
    import warnings
    with warnings.catch_warnings():  # platformdirs complains about XDG_RUNTIME_DIR
        warnings.simplefilter("ignore")
        server = pgserver.get_server(pgdata or DEFAULT_PGDATA,
                                     cleanup_mode="stop" if cleanup else None)
        return server.get_uri()


def embedded_bin(name: str) -> Optional[str]:
    """Path of a binary (pg_dump, psql, ...) shipped with the embedded server."""
    try:
        import pgserver
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(pgserver.__file__), "pginstall", "bin", name)
    return path if os.path.exists(path) else None
