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


def server_running(pgdata: str) -> bool:
    """Whether a postmaster runs on ``pgdata`` (its ``postmaster.pid`` names a live process)."""
    try:
        with open(os.path.join(pgdata, "postmaster.pid")) as f:
            pid = int(f.readline())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def start_embedded(pgdata: Optional[str] = None, cleanup: bool = True) -> str:
    """Start (or reuse) an embedded server on ``pgdata``; return its conninfo URI.

    With ``cleanup`` a server this call started stops when the interpreter exits; one
    that was already running is reused and left running (another process uses it).
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
        pgdata = pgdata or DEFAULT_PGDATA
        stop = cleanup and not server_running(pgdata)
        server = pgserver.get_server(pgdata, cleanup_mode="stop" if stop else None)
        return server.get_uri()


def embedded_bin(name: str) -> Optional[str]:
    """Path of a binary (pg_dump, psql, ...) shipped with the embedded server."""
    try:
        import pgserver
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(pgserver.__file__), "pginstall", "bin", name)
    return path if os.path.exists(path) else None
