"""Restore an archive into a live database: :func:`restore_dump`.

The package: :mod:`.run` (one restore's shared state and schedulers), :mod:`.table`
(one table's transaction), :mod:`.data` (its COPY), :mod:`.select` (which tables,
where to, and the rules an archive must keep), :mod:`.sequences` (free-standing
sequences), :mod:`.pool` (connections), :mod:`.results`.

Each table is restored in its own transaction on a connection from a bounded pool:

0. a reset session (``RESET ALL``, ``role`` or the login role, the archive's client
   encoding): nothing one table did reaches the next;
1. the user-defined types it needs (each in a savepoint: a type that already exists,
   or that a parallel table created first, is left as it is);
2. the table itself, after every expression of it was resolved on the server and
   checked against the allow-list (:mod:`dumpcodec.schema.safety`), and with its keys
   and indexes built once on the still-empty table (rolled back) so that what they
   resolve to is checked before any row (``if_exists``: ``error`` refuses an existing table, ``skip``
   leaves it alone, ``replace`` drops and recreates it *in the same transaction*, so a
   failure keeps the old table and its data, ``truncate`` empties it (``TRUNCATE ONLY``), ``append`` loads
   into it as it is);
3. the data: ``COPY ... FROM STDIN (FORMAT binary)`` with the dump's explicit column
   list, fed by :mod:`dumpcodec.pump` in large writes; the chunk members of a table are
   joined into one COPY stream (headers and trailers between chunks dropped);
4. the row count from the server is checked against the archive's footer (and the
   archive checks every member's checksum as it is read) *before* commit;
5. primary key, unique and other constraints, indexes, owned sequences (``setval``
   with ``is_called``), comments; then COMMIT;
6. after the commit, ANALYZE (unless ``analyze=False``; pg_restore runs none).

A table that fails is rolled back and reported with its reason; the others go on.
After all tables: foreign keys whose referenced table exists (each added ``NOT
VALID`` and checked in its own transaction, then validated on up to ``jobs``
connections at once; one whose validation fails is dropped again and reported).  A target schema that does not exist is created
(committed) before the table's transaction, so that parallel tables do not wait on
each other's uncommitted ``CREATE SCHEMA``; one that ends up empty is dropped again.

The archive's chunks are read (decompressed, checksummed) by a helper thread one
chunk ahead of the COPY that sends them, so reading and the server's work overlap.
Client memory is about ``jobs * (READ_AHEAD + 1)`` chunks of the archive's chunk size
(8 MiB by default) at most: 81 MB peak RSS with ``-j 1``, 115 MB with ``-j 2`` on the
benchmark tables.

From a seekable file, another helper thread prepares the next ``jobs + 1`` tables while
the connections wait on the server (:mod:`.ahead`): their definitions parsed, their DDL
planned and, for a table of one member up to 4 MiB, its data read and checksummed, so
that little client work is left between a table's round trips.  Every check still runs
in the table's own restore; a step that fails there is redone by the table's restore
and fails it as before.  While it runs, the interpreter's switch interval is 0.2 ms
(a reply is not kept waiting 5 ms for the GIL) and put back after.

Schema drift: when the target table exists (``append``/``truncate``), its live
definition is compared with the dump's (:func:`dumpcodec.schema.compare`).  Column order
and extra live columns that can take their default need nothing (COPY names its
columns); lossless widenings (int4 -> int8, varchar(10) -> text, ...) are loaded by
decoding the dump's rows with the dump's types and encoding them with the live types;
a narrowing or missing column refuses the table up front with the differences listed.

DaCHS dumps (no definitions): the table must exist (or be described by the caller
through ``definitions``); its live definition gives the column list, and a decode test
of the first chunk with the live column types checks that the data fits before
loading it as it is.

Parallelism (``jobs``): from a seekable file, tables are restored by ``jobs`` threads,
each with its own connection and its own reader of the archive (a partition waits for
its parent table).  From a pipe (one pass through the archive), the data of one table
after the other is read by the calling thread, and each table's post-data phase
(indexes, constraints, sequences, commit) is handed to one of ``jobs - 1`` background
threads while the next table's data loads, so index builds overlap; a big table's
chunks go, as they are read, to up to ``jobs`` connections that load them into a
staging table (:mod:`.staged`); at most ``jobs`` connections are open in either case.
"""

from __future__ import annotations

import os
from typing import IO, Any, Dict, Optional, Sequence, Union

from ..progress import Progress
from ..schema.selection import Selection
from .results import RestoreSummary, TableRestoreResult
from .context import IF_EXISTS, RestoreOptions
from .run import RestoreRun
from .context import DEFAULT_STAGE_LARGER_THAN
from .data import READ_AHEAD, _read_ahead  # noqa: F401  (tests use them)

__all__ = ["IF_EXISTS", "RestoreOptions", "RestoreSummary", "TableRestoreResult",
           "restore_dump"]


def restore_dump(conninfo: str,
                 source: Union[str, os.PathLike, IO[bytes]],
                 *,
                 tables: Optional[Sequence[str]] = None,
                 target_schema: Optional[str] = None,
                 if_exists: str = "error",
                 jobs: int = 1,
                 data: bool = True,
                 indexes: bool = True,
                 definitions: Optional[Dict[str, Any]] = None,
                 analyze: bool = True,
                 progress: Optional[Progress] = None,
                 privileges: bool = False,
                 role: Optional[str] = None,
                 trust_extensions: bool = True,
                 allow_attach: bool = False,
                 allow_external_fks: bool = False,
                 selection: Optional[Selection] = None,
                 resume: bool = False,
                 stage_larger_than: int = DEFAULT_STAGE_LARGER_THAN,
                 storage_options: Optional[Dict[str, Any]] = None) -> RestoreSummary:
    """Restore the archive ``source`` (path, binary file object, or ``'-'`` for stdin,
    or a URL: ``s3://bucket/key`` or any fsspec URL, read by ranged requests, one
    reader per worker, configured by ``storage_options`` and the filesystem's own
    environment; see :mod:`dumpcodec.archive.remote`).

    ``tables``: table ids or shell patterns (also matched against ``schema.name``) to
    restore, all when None.  ``target_schema``: restore every table into this schema.
    ``if_exists``: one of ``error``, ``replace``, ``append``, ``truncate``, ``skip``.
    ``jobs``: connections used in parallel (see the module docstring).  ``data=False``
    creates the tables only; ``indexes=False`` skips keys and indexes.
    ``definitions``: ``{table_id: TableDef or 'schema.table'}`` for archives without
    definitions (DaCHS; ids not mapped are skipped) or to redirect a table.
    ``privileges``: set each created table's owner and grants as dumped (roles must
    exist; off by default, as ``pg_restore --no-owner --no-privileges``).  What a
    table left out (a trigger whose function is missing, grants without
    ``privileges``, ...) is in its result's ``notes``.

    Untrusted archives (docs/RELIABILITY.md): ``role`` runs every table's work as this
    role (``SET ROLE``, as ``pg_restore --role``; restore untrusted archives as a role
    that is not a superuser); ``trust_extensions=False`` refuses objects of installed
    extensions too (operator classes, types, functions), which are otherwise treated
    like built-ins; ``allow_attach`` lets a partition attach to a parent this restore
    does not restore (an existing table); ``allow_external_fks`` creates foreign keys
    onto tables this restore does not restore.

    ``selection``: pg_restore's ``-n``/``-N``/``-T``/``--filter`` switches as a
    :class:`~dumpcodec.schema.Selection` (see :mod:`.choose`); include patterns of it
    that match nothing are listed in ``warnings`` (an error with ``strict_names``).
    ``progress``: an object with the methods of :class:`dumpcodec.progress.Progress`.
    Per-table events (restored, skipped, failed) and the warnings are logged to the
    ``dumpcodec.restore`` logger; nothing is printed.

    Returns a :class:`RestoreSummary`; per table failures are in ``failed``, not
    raised.  Errors that stop everything (an unreadable archive, a refused archive, no
    connection, a bad option) raise.
        ``stage_larger_than``: a table with this many bytes of data or more (and at least
    two chunks) loads through a staging table, its chunks by up to ``jobs``
    connections, and takes the table's place in one final transaction (:mod:`.staged`;
    0: never; from a pipe, where a table's size shows only as its data is read, a
    value above 64 MiB counts as 64 MiB).  ``resume``: continue a restore that stopped: tables it
    finished are skipped, a staged table's committed chunks are not loaded again.
    """
    opts = RestoreOptions(tables=tables, target_schema=target_schema, if_exists=if_exists,
                          jobs=jobs, data=data, indexes=indexes,
                          definitions=dict(definitions or {}), analyze=analyze,
                          progress=progress or Progress(), privileges=privileges,
                          role=role,
                          trust_extensions=trust_extensions, allow_attach=allow_attach,
                          allow_external_fks=allow_external_fks, resume=resume,
                          stage_larger_than=stage_larger_than, selection=selection,
                          storage_options=dict(storage_options) if storage_options
                          else None)
    return RestoreRun(conninfo, source, opts).run()
