"""What the parts of one restore share: its options (:class:`RestoreOptions`) and the
run as the per-table code sees it (:class:`RunContext`, which :class:`.run.RestoreRun`
implements).  Here, not in :mod:`.run`, so that :mod:`.table`, :mod:`.staged` and
:mod:`.sequences` need nothing of the module that schedules them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Protocol, Sequence, Tuple

import psycopg

from ..progress import Progress
from ..schema.safety import Guard
from ..schema.selection import Selection
from .pool import Pool
from .results import RestoreSummary
from .select import Item

#: default of ``stage_larger_than``: four chunks of the default chunk size
DEFAULT_STAGE_LARGER_THAN = 32 << 20

IF_EXISTS = ("error", "replace", "append", "truncate", "skip")

@dataclass
class RestoreOptions:
    """What :func:`restore_dump` was asked to do (see its docstring)."""
    tables: Optional[Sequence[str]] = None
    target_schema: Optional[str] = None
    if_exists: str = "error"
    jobs: int = 1
    data: bool = True
    indexes: bool = True
    definitions: Dict[str, Any] = field(default_factory=dict)
    analyze: bool = True
    progress: Progress = field(default_factory=Progress)
    privileges: bool = False
    role: Optional[str] = None
    trust_extensions: bool = True
    allow_attach: bool = False
    allow_external_fks: bool = False
    resume: bool = False
    stage_larger_than: int = DEFAULT_STAGE_LARGER_THAN
    #: pg_restore's -n/-N/-T/--filter switches (:mod:`.choose`)
    selection: Optional[Selection] = None
    #: fsspec options of an archive at a URL (dumpcodec.archive.remote)
    storage_options: Optional[Dict[str, Any]] = None

    def check(self) -> None:
        if self.if_exists not in IF_EXISTS:
            raise ValueError(f"if_exists must be one of {', '.join(IF_EXISTS)}, not "
                             f"{self.if_exists!r}")
        if self.jobs < 1:
            raise ValueError(f"jobs must be at least 1, not {self.jobs}")


class RunContext(Protocol):
    """The run, as a table's restore uses it."""
    conninfo: str
    opts: RestoreOptions
    pool: Optional[Pool]
    reader: Any
    seekable: bool
    summary: RestoreSummary
    #: the restore's record in the target database (:class:`.staged.State`)
    state: Any

    def guard(self, conn: psycopg.Connection) -> Guard: ...

    def target(self, item: Item) -> Tuple[str, str, Any]: ...

    def check(self, item: Item, schema_: str, name: str, tdef: Any) -> None: ...

    def ensure_schema(self, conn: psycopg.Connection, schema_: str) -> None: ...

    def log_chunk(self, table_id: str, chunk: int) -> None: ...
