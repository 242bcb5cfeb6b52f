"""Reading an archive: :class:`DumpReader`, ours (docs/FORMAT.md) or a DaCHS dump.

In the spirit of ``icat.dumpfile``: the reader holds the logic of reading (listing,
one-pass iteration, random access to one table, verification); a backend subclass
(:mod:`.tarball`) only says how bytes are decompressed and where a compressed file's
locator is.  The layout itself is enforced by :class:`.walker.ArchiveWalker`.

Memory: a reader holds the chunk it is reading while its consumer may still hold the
previous one, on a pipe too: about two chunks, whatever the table size.  Every size
an archive declares is checked against a limit before anything is read.
"""
from __future__ import annotations

import os
from typing import Any, BinaryIO, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from ..copy import Decoder
from ..errors import ArchiveError, ChecksumError, IncompleteArchiveError
from . import manifest as mf
from ._tar import TarEntry, TarStreamReader
from ..copy.textcopy import text_rows
from .dachs import rechunk
from .limits import (DEFAULT_CHUNK_SIZE, DEFAULT_MAX_MEMBER_SIZE, DEFAULT_MAX_META_SIZE,
                     FAST_PATH_RATIO)
from .model import TableInfo, TableInfoTuple, VerifyReport
from .streams import is_random_access
from .textcheck import TextCopyCheck
from .verify import verify_reader
from .walker import ArchiveWalker


class DumpReader:
    """Reads an archive: ours (docs/FORMAT.md) or a DaCHS dump.

    Get one from :func:`open_dump`.  On a seekable file every method may be called
    any number of times and one table is read without reading the others' data; on
    a pipe the input can be read once: either :meth:`iter_tables` (one pass, table
    by table) or one of :meth:`tables`, :meth:`read_raw`, :meth:`read_rows`,
    :meth:`verify`.  A context manager; closes the file only if :func:`open_dump`
    opened it.

    Options: ``max_member_size`` (largest chunk member accepted, default
    :data:`DEFAULT_MAX_MEMBER_SIZE`), ``max_meta_size`` (the fixed part of the limits
    for the manifest and the index, which grow with the tables seen before them;
    default :data:`DEFAULT_MAX_META_SIZE`; see :mod:`.limits`), ``chunk_size`` (how
    DaCHS members, which hold whole tables, are re-cut into chunks when read).

    Attributes after the first pass: ``layout`` (``'dumpcodec'`` or ``'dachs'``),
    ``info`` (the archive-level dict of ``manifest.json``; ``{}`` for DaCHS),
    ``complete`` (end marker seen and consistent), ``incomplete_reason``, and after
    :meth:`iter_tables` ``problems`` (what that pass found wrong).
    """

    backend_name = "?"
    #: stream offsets equal file offsets (no compression): skipping may seek
    plain = False
    #: 'dachs' forces the DaCHS layout, 'dumpcodec' ours, None detects
    layout_hint: Optional[str] = None

    def __init__(self, fileobj: BinaryIO, *, closefd: bool = False,
                 max_member_size: int = DEFAULT_MAX_MEMBER_SIZE,
                 max_meta_size: int = DEFAULT_MAX_META_SIZE,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, seekable: Optional[bool] = None):
        self._raw = fileobj
        self._closefd = closefd
        self.max_member_size = max_member_size
        self.max_meta_size = max_meta_size
        self.chunk_size = chunk_size
        self.seekable = is_random_access(fileobj) if seekable is None else seekable
        self._base = fileobj.tell() if self.seekable else 0
        self._used = False
        self.layout: Optional[str] = None
        self.info: Dict[str, Any] = {}
        self.complete: Optional[bool] = None
        self._tables: Optional[List[TableInfo]] = None
        self._by_id: Dict[str, TableInfo] = {}
        self._incomplete: Optional[IncompleteArchiveError] = None
        #: the problems the last one-pass read (:meth:`iter_tables`) found
        self.problems: List[ArchiveError] = []
        self._owner: Optional[object] = None
        #: the manifest's offsets did not hold once (a recompressed archive): walk
        self._offsets_moved = False
        #: (owner token, stream) where the last table read with _read_raw_seek ended
        self._after: Optional[Tuple[object, TarStreamReader]] = None
        self.closed = False

    @property
    def free_sequences(self) -> List[mf.FreeSequence]:
        """Sequences no column owns that the archive recorded (``info.sequences`` of
        the manifest, or of ``dumpcodec.json`` before the manifest is read)."""
        return mf.free_sequences(self.info.get("info") or {})

    # ---- backend hooks
    def _decompressor(self, raw: BinaryIO) -> BinaryIO:
        """A readable (``readinto``) of the tar stream starting at raw's position."""
        return raw

    def _check_stream_end(self, manifest_offset: Optional[int]) -> None:
        """After a whole pass over one of our archives: check what the compression
        layer needs at the very end (the locator trailer, pointing to the manifest at
        ``manifest_offset`` as the end marker says); IncompleteArchiveError or
        ArchiveError if not."""

    def _locate_manifest(self) -> Optional[int]:
        """Archive offset of the manifest member from the file's locator trailer, or
        None (no trailer: plain tar, DaCHS, truncated)."""
        return None

    def _read_tail(self, n: int) -> bytes:
        raw = self._raw
        end = raw.seek(0, os.SEEK_END)
        if end - self._base < n:
            return b""
        raw.seek(end - n)
        self._file_size = end - self._base
        return raw.read(n)

    # ---- context manager
    def __enter__(self) -> "DumpReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._closefd:
                self._raw.close()

    # ---- streams
    def _open(self, offset: int = 0) -> TarStreamReader:
        if self.closed:
            raise ArchiveError("the archive reader is closed")
        if not self.seekable:
            if self._used:
                raise ArchiveError("the input is not seekable and was already read: "
                                   "open it again (or use iter_tables() for one pass)")
            self._used = True
            return TarStreamReader(self._decompressor(self._raw))
        self._owner = None    # any generator reading the previous stream must reopen
        self._raw.seek(self._base + offset)
        src = self._decompressor(self._raw)
        seek = size = None
        if self.plain:
            raw, base = self._raw, self._base
            seek = lambda pos: raw.seek(base + pos)  # noqa: E731
            size = raw.seek(0, os.SEEK_END) - base
            raw.seek(base + offset)
        return TarStreamReader(src, start=offset if self.plain else 0, seek=seek,
                               size=size)

    @property
    def incomplete_reason(self) -> Optional[str]:
        """Why the archive is incomplete (its writer did not finish, or the input was
        cut), as one line naming where it ends; None when it is complete or not read
        that far yet (see ``complete``)."""
        return None if self._incomplete is None else str(self._incomplete)

    def walk(self, *, lenient: bool = False) -> ArchiveWalker:
        """A fresh pass over the archive's members from the start (on a pipe, the one
        pass), as :class:`.walker.ArchiveWalker` events; for :meth:`verify` and other
        checkers.  Call :meth:`record_walk` with it afterwards."""
        return ArchiveWalker(self, self._open(), lenient=lenient)

    def record_walk(self, walker: ArchiveWalker) -> None:
        """Take what a walk from :meth:`walk` learnt: the layout and the archive info
        (also after it stopped on an error: as far as it got)."""
        self._adopt(walker)

    def _adopt(self, walker: ArchiveWalker) -> None:
        self.layout = walker.layout
        if walker.layout == "dumpcodec":
            src = walker.manifest if walker.manifest is not None else walker.info
            self.info = {k: v for k, v in (src or {}).items() if k != "tables"}
        else:
            self.info = {}

    # ---- listing
    def tables(self, *, allow_incomplete: bool = False) -> List[TableInfo]:
        """Every table in archive order (one pass skipping data, cached).

        An archive whose writer did not finish raises IncompleteArchiveError, unless
        ``allow_incomplete``: then the tables seen so far are returned (a table
        without footer has ``complete=False``) and ``self.complete`` is False.  Two
        tables with one id raise ArchiveError.
        """
        self._load_tables(allow_incomplete)
        return list(self._tables)

    def _load_tables(self, allow_incomplete: bool = False) -> None:
        if self._tables is not None:
            if self._incomplete is not None and not allow_incomplete:
                raise self._incomplete
            return
        if self.seekable and self._fast_tables():
            return
        walker = ArchiveWalker(self, self._open())
        try:
            for _ in walker.events():
                pass
        except IncompleteArchiveError as exc:
            self._adopt(walker)
            self._set_tables(walker.tables)
            self.complete = False
            self._incomplete = exc
            if not allow_incomplete:
                raise
            return
        self._adopt(walker)
        self._set_tables(walker.tables)
        self.complete = True

    def share_index(self, other: "DumpReader") -> None:
        """Use the table index ``other``, a reader of the same archive, has loaded,
        instead of reading the manifest again: the readers a parallel restore opens on
        one file then hold one copy of it (at 10,000 tables a copy holds about 45 MB
        of Python objects, definitions as text).  Only for random access (a file,
        object storage), where reading leaves the index as it is."""
        if not (self.seekable and other.seekable):
            raise ArchiveError("sharing a table index needs random access (a file)")
        other._load_tables()
        self.layout, self.info, self.complete = other.layout, other.info, other.complete
        self._tables, self._by_id = other._tables, other._by_id
        self._incomplete = other._incomplete

    def _set_tables(self, tables: List[TableInfo]) -> None:
        # the walk refused duplicate ids; a dict makes table() constant time
        self._tables = tables
        self._by_id = {t.table_id: t for t in tables}

    def _fast_tables(self) -> bool:
        # Compressed archives end with a locator naming the manifest's offset: read
        # manifest, index and end marker from there instead of decompressing all the
        # data.  Anything unexpected falls back to the full pass, which then says
        # precisely what is wrong.
        try:
            offset = self._locate_manifest()
            if offset is None or offset >= getattr(self, "_file_size", 0):
                return False
            walker = ArchiveWalker(self, self._open(offset))
            walker.layout = "dumpcodec"
            # sized by the compressed tail, since no header was read (.limits)
            walker.tail_only(self.max_meta_size
                             + FAST_PATH_RATIO * (self._file_size - offset))
        except (ArchiveError, OSError, EOFError):
            return False
        self._adopt(walker)
        self._set_tables(walker.tables)
        self.complete = True
        return True

    def table(self, table_id: str) -> TableInfo:
        """The :class:`TableInfo` of ``table_id``; ArchiveError naming the ids if absent."""
        self._load_tables()
        info = self._by_id.get(table_id)
        if info is not None:
            return info
        ids = [t.table_id for t in self._tables[:11]]
        shown = ", ".join(repr(i) for i in ids[:10]) + (", ..." if len(ids) > 10 else "")
        raise ArchiveError(f"no table {table_id!r} in the archive (it holds {shown or 'none'})")

    # ---- one pass
    def iter_tables(self) -> Iterator[Tuple[TableInfo, Iterator[bytes]]]:
        """One pass in archive order: ``(TableInfo, chunks)`` per table.  Works on a
        pipe; DaCHS dumps need a seekable file here (their index comes last).

        ``chunks`` yields each data member as a bytes-like object (a complete COPY
        stream).  Consume it before advancing the outer iterator (what is left is
        skipped).  When ``chunks`` is exhausted the table's footer has been read and
        checked: afterwards ``info.rows``/``members`` are filled and ``info.verified``
        is True.

        A table whose data or footer fails its checks (a SHA-256 mismatch raises
        ChecksumError, a footer that does not parse or does not match the data,
        text that PostgreSQL would split into other rows) raises from its own
        ``chunks`` only, when the problem shows (a checksum at the footer, after the
        last chunk, i.e. before a loader commits); ``info.error`` keeps it, and the
        pass goes on with the next table.  A broken tar stream (corrupt compression,
        a member out of place, a cut) cannot be read past: the outer iterator raises.

        After the last table the manifest, index and end marker are checked against
        all that was read; if the archive ends without them
        (IncompleteArchiveError) or they disagree (ArchiveError), the outer iterator
        raises that after the last table.  Then ``complete`` is True only if the
        end marker was read and held, ``incomplete_reason`` says why the archive is
        incomplete, and ``problems`` lists every problem of the pass (the tables'
        errors and the archive's) in order.

        On a seekable file the archive's structure is checked first (with a locator:
        only the manifest, index and end marker), so that duplicate table ids and
        the like are refused before any table's data is handed out.
        """
        dachs_ids: Optional[Dict[str, str]] = None
        if self.seekable:
            # the structure first (cheap with a locator): duplicate ids and the like
            # are refused before any table's data is handed out
            self._load_tables(allow_incomplete=True)
            if self.layout == "dachs":
                dachs_ids = {m.name: t.table_id for t in self._tables for m in t.members}
        walker = ArchiveWalker(self, self._open(), isolate_tables=True)
        self.problems = []
        token = self._owner = object()
        broken: List[Exception] = []      # the walk itself failed (inside a table too)
        events = self._watched(self._owned(walker.events(), token, "iter_tables()"),
                               broken)
        try:
            for ev in events:
                kind = ev[0]
                if kind == "info":
                    # known before any table: restore needs the client encoding up front
                    self.layout = "dumpcodec"
                    self.info = dict(ev[1])
                elif kind == "header":
                    info = ev[1]
                    footer_read: List[bool] = []
                    chunks = self._table_chunks(walker, events, info, footer_read)
                    yield info, chunks
                    chunks.close()
                    if not footer_read and not broken:
                        for ev2 in events:         # skip what is left of the table
                            if ev2[0] == "footer":
                                break
                    if broken:
                        raise broken[0]      # raised in chunks too; nothing follows
                    if info.error is not None:
                        self.problems.append(info.error)
                elif kind == "dachs":
                    if dachs_ids is None:
                        raise ArchiveError("a DaCHS dump names its tables in index.txt, "
                                           "which comes last: read it from a seekable "
                                           "file, not a pipe")
                    info, entry = ev[1], ev[2]
                    table_id = dachs_ids.get(entry.name)
                    if table_id is None:
                        continue    # not listed in index.txt: not a table
                    full = self._by_id[table_id]
                    chunks = self._dachs_chunks(walker, entry, full)
                    yield full, chunks
                    chunks.close()
                    if broken:
                        raise broken[0]
                    if full.error is not None:
                        self.problems.append(full.error)
        except ArchiveError as exc:
            self._adopt(walker)
            self.complete = False
            if isinstance(exc, IncompleteArchiveError):
                self._incomplete = exc
            self.problems.append(exc)
            raise
        self._adopt(walker)
        if self._tables is None:
            self._set_tables(walker.tables)
        self.complete = True

    @staticmethod
    def _watched(events: Iterator, broken: List[Exception]) -> Iterator:
        # an error of the walk ends it, also when a table's chunks met it: note it
        try:
            yield from events
        except Exception as exc:
            broken.append(exc)
            raise

    def _text_check(self, info: TableInfo, member: str) -> Optional[TextCopyCheck]:
        """For a text member: the check that its rows are the rows a server loads."""
        if info.format != "text":
            return None
        return TextCopyCheck(f"member {member!r} (table {info.table_id!r})",
                             self.info.get("client_encoding"))

    def _table_chunks(self, walker: ArchiveWalker, events, info: TableInfo,
                      footer_read: List[bool]) -> Iterator[bytes]:
        try:
            for ev in events:
                if ev[0] == "data":
                    data = walker.read_member(ev[2])
                    check = self._text_check(info, ev[2].name)
                    if check is not None:
                        check.chunk(data)
                    yield data
                    del data    # hold no chunk while reading the next one
                elif ev[0] == "footer":
                    footer_read.append(True)
                    if info.error is not None:
                        raise info.error      # the footer's verdict on this table
                    return
        except ArchiveError as exc:
            if not footer_read or info.error is None:
                info.error = exc
            raise
        raise IncompleteArchiveError(f"table {info.table_id!r}: archive ends without footer")

    def _dachs_chunks(self, walker: ArchiveWalker, entry: TarEntry,
                      info: TableInfo) -> Iterator[bytes]:
        check = self._text_check(info, entry.name)
        try:
            for chunk in rechunk(walker.stream_member(entry), info.format,
                                 self.chunk_size, entry.name):
                if check is not None:
                    check.chunk(chunk)       # rechunk cuts text after a line end
                yield chunk
                del chunk
        except ArchiveError as exc:
            info.error = exc
            raise

    # ---- one table
    def open_table(self, table_id: str) -> "TableData":
        """One table's data, ready to read as chunks or rows (:class:`TableData`).

        Its :class:`TableInfo` (columns, types, format) is there before any data is
        read.  On a seekable file only this table's members are read; on a pipe the
        input is read up to the table's header now, and closing the result ends the
        pass there.  No such table: ArchiveError (on a pipe after reading to the end).
        """
        if self.seekable:
            info = self.table(table_id)
            return TableData(info, self._read_raw_seek(info),
                             self.info.get("client_encoding"))
        tables = self.iter_tables()
        for info, chunks in tables:
            if info.table_id == table_id:
                return TableData(info, chunks, self.info.get("client_encoding"),
                                 tables.close)
        raise ArchiveError(f"no table {table_id!r} in the archive")

    def read_raw(self, table_id: str) -> Iterator[bytes]:
        """The data of one table: each item one complete COPY stream (bytes-like).

        On a seekable file only this table's members are read (our archives: from the
        offsets in the manifest); each member's SHA-256 is checked against the
        manifest before it is yielded (ChecksumError names the member).  DaCHS
        members, which hold a whole table and have no checksum, are re-cut into
        complete streams of about ``chunk_size`` bytes.  On a pipe this consumes the
        input up to the table (checksums then checked at the table's footer).
        """
        if not self.seekable:
            return self._read_raw_stream(table_id)
        return self.open_table(table_id).chunks()

    def read_members(self, table_id: str,
                     indices: Iterable[int]) -> Iterator[Tuple[int, bytes]]:
        """``(index, data)`` of the given data members of one table (0-based, in the
        order given), each a complete COPY stream checked against its SHA-256 like
        :meth:`read_raw`'s.  Random access only (our own layout, with offsets), so that
        several readers of one file can load parts of one table in parallel."""
        if not self.seekable:
            raise ArchiveError("reading single members needs random access (a file)")
        info = self.table(table_id)
        if info.layout == "dachs":
            raise ArchiveError(f"table {table_id!r}: a DaCHS member cannot be read in parts")
        for i in indices:
            if not 0 <= i < len(info.members):
                raise ArchiveError(f"table {table_id!r} has no member {i}")
            m = info.members[i]
            self._owner = object()
            tar, entry = None, None
            if m.offset is not None:
                try:
                    tar = self._open(m.offset)
                    entry = tar.next()
                except (ArchiveError, OSError, EOFError):
                    entry = None
            if entry is None or entry.name != m.name:
                # no offset, or the file was recompressed since: walk to it
                tar = self._open(0)
                entry = tar.next()
                while entry is not None and entry.name != m.name:
                    entry = tar.next()
            if entry is None or entry.name != m.name or entry.size != m.size:
                raise ArchiveError(f"table {table_id!r}: member {m.name!r} not where the "
                                   f"manifest says")
            walker = ArchiveWalker(self, tar)
            walker.layout = "dumpcodec"
            data = walker.read_member(entry)
            if m.sha256 is not None and walker.last_digest != m.sha256:
                raise ChecksumError(f"member {m.name!r} (table {table_id!r}): SHA-256 "
                                    f"{walker.last_digest} does not match {m.sha256} in "
                                    f"the manifest")
            check = self._text_check(info, m.name)
            if check is not None:
                check.chunk(data)
            yield i, data
            del data

    def _read_raw_stream(self, table_id: str) -> Iterator[bytes]:
        with self.open_table(table_id) as t:
            yield from t.chunks()

    def _read_raw_seek(self, info: TableInfo) -> Iterator[bytes]:
        if not info.members:
            return
        if info.layout == "dachs":
            yield from self._read_dachs_seek(info)
            return
        first = info.members[0]
        tar = entry = None
        if first.offset is not None and not self._offsets_moved:
            # the manifest's offsets hold for the file as written; an archive that was
            # recompressed since (zstd -d | gzip) has others: then walk to the member
            try:
                tar = self._open(first.offset)
                entry = tar.next()
                if entry is None or entry.name != first.name:
                    tar = None
            except (ArchiveError, OSError, EOFError):
                tar = None
            self._offsets_moved = tar is None
        if tar is None:
            tar, entry = self._walk_to(info, first.name)
        token = self._owner = object()
        walker = ArchiveWalker(self, tar)
        walker.layout = "dumpcodec"
        for i, m in enumerate(info.members):
            if i:
                if self._owner is not token:
                    # another read used the file meanwhile: resume at this member
                    tar = self._resume(info, i)
                    token = self._owner = object()
                    walker = ArchiveWalker(self, tar)
                    walker.layout = "dumpcodec"
                entry = tar.next()
            if entry is None or entry.name != m.name:
                got = entry.name if entry is not None else "the end of the archive"
                raise ArchiveError(f"table {info.table_id!r}: expected member {m.name!r}, "
                                   f"found {got!r}")
            if entry.size != m.size:
                raise ArchiveError(f"member {m.name!r} (table {info.table_id!r}): tar "
                                   f"header says {entry.size} bytes, manifest says {m.size}")
            data = walker.read_member(entry)
            digest = walker.last_digest          # hashed once, as it was read
            if m.sha256 is not None and digest != m.sha256:
                raise ChecksumError(f"member {m.name!r} (table {info.table_id!r}): SHA-256 "
                                    f"{digest} does not match {m.sha256} in the manifest")
            check = self._text_check(info, m.name)
            if check is not None:
                check.chunk(data)
            yield data
            del data    # hold no chunk while reading the next one
        if self._offsets_moved and self._owner is token:
            # where the next table's walk may go on from (see _walk_to)
            self._after = (token, tar)

    def _walk_to(self, info: TableInfo, name: str) -> Tuple[TarStreamReader, TarEntry]:
        """A stream positioned at member ``name`` (of ``info``), found by walking:
        from where the last table's read stopped when nothing used the file since
        (tables are read in archive order mostly, so a restore of an archive whose
        offsets no longer hold stays one pass), else from the start."""
        after, self._after = self._after, None
        if after is not None and after[0] is self._owner:
            tar = after[1]
            entry = tar.next()
            while entry is not None:
                if entry.name == name:
                    return tar, entry
                entry = tar.next()
        tar = self._open(0)
        while True:
            entry = tar.next()
            if entry is None:
                raise ArchiveError(f"table {info.table_id!r}: member {name!r} not found")
            if entry.name == name:
                return tar, entry

    def _resume(self, info: TableInfo, i: int) -> TarStreamReader:
        """A stream positioned before member ``i`` of ``info``."""
        m = info.members[i]
        if m.offset is not None:
            try:
                return self._open(m.offset)   # the caller checks the member's name
            except (ArchiveError, OSError, EOFError):
                pass
        tar = self._open(0)
        previous = info.members[i - 1].name
        while True:
            entry = tar.next()
            if entry is None:
                raise ArchiveError(f"table {info.table_id!r}: member {previous!r} not found")
            if entry.name == previous:
                return tar

    def _read_dachs_seek(self, info: TableInfo) -> Iterator[bytes]:
        for m in info.members:
            if self.plain and m.offset is not None:
                tar = self._open(m.offset)
                entry = tar.next()
            else:
                tar = self._open(0)
                entry = tar.next()
                while entry is not None and entry.name != m.name:
                    entry = tar.next()
            if entry is None or entry.name != m.name:
                raise ArchiveError(f"member {m.name!r} (table {info.table_id!r}) not found")
            walker = ArchiveWalker(self, tar)
            walker.layout = "dachs"
            token = self._owner = object()
            check = self._text_check(info, m.name)
            for chunk in rechunk(self._owned(walker.stream_member(entry), token,
                                             f"member {m.name!r}"),
                                 info.format, self.chunk_size, m.name):
                if check is not None:
                    check.chunk(chunk)   # rechunk cuts text after a line end
                yield chunk
                del chunk

    def _owned(self, items: Iterator, token: object, what: str) -> Iterator:
        # a stream that cannot be resumed elsewhere (a DaCHS member read in pieces, a
        # one-pass iteration): another read in between would have moved the file
        # under it, so say so instead of reading garbage
        items = iter(items)
        while True:
            if self._owner is not token:
                raise ArchiveError(f"{what}: another read used this reader meanwhile; "
                                   "use one reader per concurrent read")
            item = next(items, None)
            if item is None:
                return
            yield item

    def read_rows(self, table_id: str, decode: bool = True,
                  types: Optional[List[Any]] = None) -> Iterator[tuple]:
        """The rows of one table as tuples (see :meth:`TableData.rows`)."""
        with self.open_table(table_id) as t:
            yield from t.rows(decode, types)

    # ---- verification
    def verify(self, *, scan: bool = True) -> "VerifyReport":
        """Read everything once and check it; never raises for archive problems.

        Checks every data member's SHA-256 and, with ``scan``, its COPY framing (the
        codec's Scanner; text: line structure) and row count against the footer and
        manifest; the layout, index and end marker.  Returns a :class:`VerifyReport`.
        """
        return verify_reader(self, scan=scan)



class TableData:
    """One table's data, from :meth:`DumpReader.open_table`.

    ``info`` is the table's :class:`TableInfo`.  The data is read once, either as
    :meth:`chunks` or as :meth:`rows`.  A context manager: :meth:`close` (or leaving
    the ``with``) stops reading, and on a pipe ends the pass.
    """

    def __init__(self, info: TableInfo, chunks: Iterator[bytes],
                 encoding: Optional[str], on_close: Optional[Callable[[], None]] = None):
        self.info = info
        self._chunks = chunks
        self._encoding = encoding
        self._on_close = on_close
        self._taken = False

    def chunks(self) -> Iterator[bytes]:
        """The data members, each one complete COPY stream in ``info.format``, checked
        as :meth:`DumpReader.read_raw` says."""
        if self._taken:
            raise ArchiveError(f"table {self.info.table_id!r}: its data was already "
                               "read (open the table again)")
        self._taken = True
        return self._chunks

    def rows(self, decode: bool = True, types: Optional[List[Any]] = None
             ) -> Iterator[tuple]:
        """The rows as tuples.

        Binary data goes through the codec's ``Decoder`` with the table's types (or
        ``types``) when ``decode``, else each field is ``bytes`` (None for NULL); a
        table without types (DaCHS) gives bytes.  Text data gives ``str`` fields
        (``bytes`` unless ``decode``) with COPY escapes undone, None for NULL, decoded
        from the archive's client encoding.
        """
        return _rows(self.info, self.chunks(), decode, types, self._encoding)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __enter__(self) -> "TableData":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _rows(info: TableInfo, chunks: Iterator[bytes], decode: bool,
          types: Optional[List[Any]], encoding: Optional[str]) -> Iterator[tuple]:
    if info.format == "text":
        yield from text_rows(chunks, decode, encoding)
        return
    spec = types if types is not None else info.types
    for chunk in chunks:
        if decode and spec is not None:
            dec = Decoder(spec, names=info.columns)
        else:
            dec = Decoder(None, raw=True)
        yield from dec.feed(chunk)
        dec.close()


def iter_table_infos(reader: DumpReader) -> Iterator[TableInfoTuple]:
    """Per table: (member name, table-id, has-definition, UTC unix dump time, size).

    As DaCHS's ``iterTableInfos``.  ``member`` is the first data member (the header
    member for a table without data), ``size`` the raw COPY bytes of the table.
    """
    for t in reader.tables():
        member = t.members[0].name if t.members else (t.header.name if t.header else "")
        yield TableInfoTuple(member, t.table_id, t.has_definition, t.dump_time,
                             t.raw_size)


__all__ = ["DumpReader", "TableData", "iter_table_infos"]
