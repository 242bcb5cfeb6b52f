"""One sequential pass over an archive's members: :class:`ArchiveWalker`.

The walker enforces the layout of docs/FORMAT.md member by member (names, order,
sizes against limits, every JSON member's fields, footers against the data,
manifest, index and end marker against all that was seen) and reports what it meets
as events, so that listing, one-pass reading and verification share one
implementation.  DaCHS dumps are walked by :func:`.dachs.walk_dachs`.
"""
from __future__ import annotations

import hashlib
from typing import Any, Dict, Iterator, List, Optional, Protocol, Tuple

from ..errors import ArchiveError, ChecksumError, IncompleteArchiveError
from . import manifest as mf
from ._tar import TarEntry, TarStreamReader, drain_end
from .dachs import walk_dachs
from .limits import (MAX_SMALL_META_SIZE, footer_limit, index_entry_bytes, index_limit,
                     manifest_limit)
from .model import MemberInfo, TableInfo


class WalkSource(Protocol):
    """What a walk needs of the reader it serves (:class:`.reader.DumpReader`)."""
    max_member_size: int
    max_meta_size: int
    layout_hint: Optional[str]
    plain: bool
    backend_name: str

    def _check_stream_end(self, manifest_offset: Optional[int]) -> None: ...


class TableState:
    """What one pass has seen of a table: digests and row counts per data member."""

    def __init__(self, info: TableInfo):
        self.info = info
        self.seen: List[TarEntry] = []
        self.digests: Dict[str, str] = {}
        self.rows: Dict[str, int] = {}


class ArchiveWalker:
    """One sequential pass over the members, enforcing the layout (FORMAT.md).

    ``events()`` yields ``("info", doc)``, ``("header", TableInfo)``,
    ``("data", TableInfo, TarEntry)`` (read it with :meth:`read_member` or
    :meth:`stream_member`, or leave it to be skipped), ``("footer", TableInfo)``,
    ``("manifest", doc)``, ``("index", entries)``, ``("end", doc)``, and for DaCHS
    dumps ``("dachs", TableInfo, TarEntry)``; it returns after the end-of-archive
    blocks once completeness is checked.  Consistency problems (checksums, counts,
    manifest vs footers) go to ``problem()``, which raises unless ``lenient``, in
    which case they are collected in ``problems``; structural problems always raise.

    ``isolate_tables`` (one-pass reading): whatever is wrong with a table's footer or
    with its data against the footer (a checksum, a row count, a footer that does not
    parse or belongs elsewhere) is the table's own problem: it goes to the table's
    ``TableInfo.error`` (``complete`` and ``verified`` stay False) and the pass goes
    on with the next table; the manifest is not compared with such a table.
    """

    def __init__(self, reader: WalkSource, tar: TarStreamReader, *,
                 lenient: bool = False, isolate_tables: bool = False):
        self.reader = reader
        self.tar = tar
        self.lenient = lenient
        self.isolate_tables = isolate_tables
        self._table_problems: Optional[List[ArchiveError]] = None
        self.problems: List[ArchiveError] = []
        self.layout: Optional[str] = None
        self.info: Optional[Dict[str, Any]] = None
        self.tables: List[TableInfo] = []
        self.manifest: Optional[Dict[str, Any]] = None
        self.index: Optional[List[Tuple[str, str]]] = None
        self.end: Optional[Dict[str, Any]] = None
        self.names: Dict[str, int] = {}
        self.ids: Dict[str, int] = {}       # table id -> index, to refuse duplicates
        self.dachs_members: List[TarEntry] = []
        self.state: Optional[TableState] = None
        self.states: List[TableState] = []
        self.manifest_sha256: Optional[str] = None
        self.index_bytes = b""
        self.last_digest: Optional[str] = None
        # what the manifest and index may hold, grown by every table seen (.limits)
        self.table_meta_bytes = 0
        self.index_entries_bytes = 0

    def problem(self, exc: ArchiveError) -> None:
        if self._table_problems is not None:
            self._table_problems.append(exc)     # isolate_tables: the table's own
            return
        if not self.lenient:
            raise exc
        self.problems.append(exc)

    # ---- member data
    def meta(self, entry: TarEntry, limit: int) -> bytes:
        if entry.size > limit:
            raise ArchiveError(f"member {entry.name!r} declares {entry.size} bytes, more "
                               f"than the {limit}-byte limit for metadata")
        return bytes(self.tar.read_data(entry))

    def _check_data_size(self, entry: TarEntry) -> None:
        limit = self.reader.max_member_size
        if self.layout == "dumpcodec" and entry.size > limit:
            raise ArchiveError(f"member {entry.name!r} declares {entry.size} bytes, more "
                               f"than the {limit}-byte limit for a chunk (a decompression "
                               "bomb or a corrupt header)")

    def read_member(self, entry: TarEntry) -> bytearray:
        """Read a whole data member (bounded), record its digest (also in
        ``last_digest``)."""
        self._check_data_size(entry)
        data = self.tar.read_data(entry)
        self.last_digest = hashlib.sha256(data).hexdigest()
        self._record(entry, self.last_digest)
        return data

    def stream_member(self, entry: TarEntry) -> Iterator[memoryview]:
        """A data member in pieces; its digest is recorded once fully read."""
        h = hashlib.sha256()
        for piece in self.tar.iter_data(entry):
            h.update(piece)
            yield piece
        self._record(entry, h.hexdigest())

    def rows_by_member(self) -> Dict[str, Optional[int]]:
        """Rows per data member seen so far, as counted by whoever read it and called
        :meth:`record_rows` (None where nobody counted)."""
        return {e.name: st.rows.get(e.name) for st in self.states for e in st.seen}

    def record_rows(self, entry: TarEntry, rows: int) -> None:
        if self.state is not None:
            self.state.rows[entry.name] = rows

    def _record(self, entry: TarEntry, digest: str) -> None:
        if self.state is not None:
            self.state.digests[entry.name] = digest

    # ---- the pass
    def events(self) -> Iterator[tuple]:
        tar = self.tar
        entry = tar.next()
        if entry is None:
            raise ArchiveError("the archive is empty (no members)")
        forced = self.reader.layout_hint
        if entry.name == mf.INFO_MEMBER and forced != "dachs":
            self.layout = "dumpcodec"
            yield from self._ours(entry)
        else:
            if forced == "dumpcodec":
                raise ArchiveError(f"not a dumpcodec archive: first member is "
                                   f"{entry.name!r}, not {mf.INFO_MEMBER!r}")
            self.layout = "dachs"
            yield from walk_dachs(self, entry)

    def note_name(self, entry: TarEntry) -> None:
        if entry.name in self.names:
            raise ArchiveError(f"duplicate member {entry.name!r} (stream offsets "
                               f"{self.names[entry.name]} and {entry.header_offset})")
        self.names[entry.name] = entry.header_offset

    def _ours(self, entry: TarEntry) -> Iterator[tuple]:
        tar = self.tar
        self.note_name(entry)
        self.info = mf.check_info(entry.name, mf.load_json(
            entry.name, self.meta(entry, MAX_SMALL_META_SIZE)))
        yield ("info", self.info)
        while True:
            entry = tar.next()
            if entry is None:
                raise IncompleteArchiveError(
                    f"archive ends after member {tar.last_name!r} without "
                    f"{mf.MANIFEST_MEMBER}, {mf.INDEX_MEMBER} and {mf.END_MEMBER}: the "
                    "writer did not finish")
            self.note_name(entry)
            index = len(self.tables)
            if entry.name == mf.header_member(index):
                yield from self._table(entry, index)
                continue
            if entry.name == mf.MANIFEST_MEMBER:
                break
            raise ArchiveError(f"unexpected member {entry.name!r} after "
                               f"{tar.last_name!r}: expected {mf.header_member(index)!r} "
                               f"or {mf.MANIFEST_MEMBER!r}")
        # manifest
        # its entries as TableInfos (one at a time: no parsed copy of all of them)
        self.manifest = self._manifest(entry, manifest_limit(
            self.reader.max_meta_size, len(self.tables), self.table_meta_bytes),
            table_from_manifest)
        self._check_manifest()
        yield ("manifest", self.manifest)
        entry = self._expect(mf.INDEX_MEMBER)
        self.index_bytes = self.meta(entry, index_limit(self.reader.max_meta_size,
                                                        self.index_entries_bytes))
        self.index = mf.parse_index_file(self.index_bytes, max_size=len(self.index_bytes))
        self._check_index()
        yield ("index", self.index)
        entry = self._expect(mf.END_MEMBER)
        self.end = mf.check_end(entry.name, mf.load_json(
            entry.name, self.meta(entry, MAX_SMALL_META_SIZE)))
        self._check_end()
        yield ("end", self.end)
        entry = tar.next()
        if entry is not None:
            raise ArchiveError(f"member {entry.name!r} after the end marker "
                               f"{mf.END_MEMBER!r}")
        drain_end(tar)
        self._check_stream_end()

    def _manifest(self, entry: TarEntry, limit: int, build=None) -> Dict[str, Any]:
        # its digest kept, its bytes let go before the text is parsed (at 10,000
        # tables the manifest is 28 MB)
        data = self.meta(entry, limit)
        self.manifest_sha256 = hashlib.sha256(data).hexdigest()
        text = mf.decode_manifest(entry.name, data)
        del data
        return mf.load_manifest(entry.name, text, build)

    def tail_only(self, manifest_size_limit: int) -> None:
        """Read manifest, index and end marker from a stream that starts at the
        manifest member, which may hold ``manifest_size_limit`` bytes; build the
        tables from the manifest."""
        tar = self.tar
        entry = tar.next()
        if entry is None or entry.name != mf.MANIFEST_MEMBER:
            raise ArchiveError("the locator does not point to the manifest")
        self.note_name(entry)
        self.manifest = self._manifest(entry, manifest_size_limit, table_from_manifest)
        self.tables = self.manifest["tables"]
        for t in self.tables:
            if t.table_id in self.ids:
                raise ArchiveError(f"{mf.MANIFEST_MEMBER}: table id {t.table_id!r} appears "
                                   f"twice (tables {self.ids[t.table_id]} and {t.index})")
            self.ids[t.table_id] = t.index
        entry = self._expect(mf.INDEX_MEMBER)
        self.index_bytes = self.meta(entry, index_limit(
            self.reader.max_meta_size, sum(index_entry_bytes(m.name, t.table_id)
                                           for t in self.tables for m in t.members)))
        self.index = mf.parse_index_file(self.index_bytes, max_size=len(self.index_bytes))
        self._check_index()
        entry = self._expect(mf.END_MEMBER)
        self.end = mf.check_end(entry.name, mf.load_json(
            entry.name, self.meta(entry, MAX_SMALL_META_SIZE)))
        if (len(self.tables) != self.end["tables"]
                or self.manifest_sha256 != self.end["manifest_sha256"]
                or hashlib.sha256(self.index_bytes).hexdigest() != self.end["index_sha256"]):
            raise ArchiveError("end marker does not match manifest/index")
        if tar.next() is not None:
            raise ArchiveError("member after the end marker")
        drain_end(tar)
        self._check_stream_end()

    def _check_stream_end(self) -> None:
        # The locator trailer is ours: only an archive still in the compression it
        # was written with has one.  A plain tar compressed afterwards (FORMAT.md,
        # section 6) is read in one pass; its compressor checks its own end.
        written = (self.manifest or self.info or {}).get("compression")
        if written in (None, self.reader.backend_name):
            self.reader._check_stream_end(self.end.get("manifest_offset"))

    def _expect(self, name: str) -> TarEntry:
        entry = self.tar.next()
        if entry is None:
            raise IncompleteArchiveError(
                f"archive ends after {self.tar.last_name!r} without {name!r} and the end "
                "marker: the writer did not finish")
        self.note_name(entry)
        if entry.name != name:
            raise ArchiveError(f"unexpected member {entry.name!r} after "
                               f"{self.tar.last_name!r}: expected {name!r}")
        return entry

    def _table(self, entry: TarEntry, index: int) -> Iterator[tuple]:
        tar = self.tar
        raw_header = self.meta(entry, MAX_SMALL_META_SIZE)
        doc = mf.definition_as_text(mf.check_header(entry.name, mf.load_json(
            entry.name, raw_header)))
        if doc["index"] != index:
            raise ArchiveError(f"{entry.name}: index {doc['index']} in member of table "
                               f"{index}")
        if doc["table_id"] in self.ids:        # a set: constant time per table
            raise ArchiveError(f"{entry.name}: table id {doc['table_id']!r} appears twice "
                               f"(first in {mf.header_member(self.ids[doc['table_id']])})")
        self.ids[doc["table_id"]] = index
        info = TableInfo(doc["table_id"], index, doc["format"], doc.get("columns"),
                         doc.get("types"), doc.get("definition"), float(doc["dump_time"]),
                         doc.get("extra") or {},
                         header=MemberInfo(entry.name, entry.size,
                                           sha256=hashlib.sha256(raw_header).hexdigest()),
                         chunk_size=doc.get("chunk_size"))
        state = TableState(info)
        self.tables.append(info)
        self.states.append(state)
        self.state = state
        yield ("header", info)
        footer = mf.footer_member(index)
        while True:
            entry = tar.next()
            if entry is None:
                raise IncompleteArchiveError(
                    f"archive ends inside table {info.table_id!r} after member "
                    f"{tar.last_name!r} (no {footer!r}): the writer did not finish")
            self.note_name(entry)
            expected = mf.chunk_member(index, len(state.seen), info.format)
            if entry.name == expected:
                self._check_data_size(entry)
                state.seen.append(entry)
                self.index_entries_bytes += index_entry_bytes(entry.name, info.table_id)
                yield ("data", info, entry)
                continue
            if entry.name == footer:
                break
            raise ArchiveError(f"unexpected member {entry.name!r} in table "
                               f"{info.table_id!r}: expected {expected!r} or {footer!r}")
        self.table_meta_bytes += len(raw_header)
        self.state = None
        if not self.isolate_tables:
            self._footer(state, entry)
        else:
            # the tar stream is intact up to here: whatever is wrong with this table's
            # footer or data is this table's problem, and the pass goes on
            self._table_problems = []
            try:
                self._footer(state, entry)
            except ArchiveError as exc:
                self._table_problems.append(exc)
            problems, self._table_problems = self._table_problems, None
            if problems:
                info.error = problems[0] if len(problems) == 1 else type(problems[0])(
                    "; ".join(str(p) for p in problems))
                info.complete = info.verified = False
                if not info.members:
                    # no footer to say so: the members are those in the archive (what
                    # index.txt must list)
                    info.members = [MemberInfo(e.name, e.size) for e in state.seen]
        yield ("footer", info)

    def _footer(self, state: TableState, entry: TarEntry) -> None:
        raw_footer = self.meta(entry, footer_limit(len(state.seen)))
        self.table_meta_bytes += len(raw_footer)
        doc = mf.check_footer(entry.name, mf.load_json(entry.name, raw_footer))
        self._check_footer(state, doc, entry)
        state.info.footer.sha256 = hashlib.sha256(raw_footer).hexdigest()

    def _check_footer(self, state: TableState, doc: Dict[str, Any],
                      entry: TarEntry) -> None:
        info = state.info
        where = f"{entry.name} (table {info.table_id!r})"
        if doc["table_id"] != info.table_id or doc["index"] != info.index:
            raise ArchiveError(f"{where}: footer is for table {doc['table_id']!r} "
                               f"(index {doc['index']})")
        members = [MemberInfo.from_json(m) for m in doc["members"]]
        names = [m.name for m in members]
        seen = [e.name for e in state.seen]
        if names != seen:
            diff = next((i for i, (a, b) in enumerate(zip(names, seen)) if a != b),
                        min(len(names), len(seen)))
            raise ArchiveError(f"{where}: footer lists {len(names)} members, the archive "
                               f"holds {len(seen)}; they differ at position {diff} "
                               f"({names[diff] if diff < len(names) else 'none'!r} vs "
                               f"{seen[diff] if diff < len(seen) else 'none'!r})")
        verified = True
        for m, e in zip(members, state.seen):
            if m.size != e.size:
                raise ArchiveError(f"member {e.name!r} (table {info.table_id!r}): tar "
                                   f"header says {e.size} bytes, footer says {m.size}")
            digest = state.digests.get(e.name)
            if digest is None:
                verified = False
            elif digest != m.sha256:
                self.problem(ChecksumError(
                    f"member {e.name!r} (table {info.table_id!r}): SHA-256 {digest} does "
                    f"not match {m.sha256} recorded in {entry.name}"))
                verified = False
            rows = state.rows.get(e.name)
            if rows is not None and m.rows is not None and rows != m.rows:
                self.problem(ArchiveError(
                    f"member {e.name!r} (table {info.table_id!r}): holds {rows} rows, "
                    f"{entry.name} says {m.rows}"))
                verified = False
        total_rows = sum(m.rows or 0 for m in members)
        if all(m.rows is not None for m in members) and total_rows != doc["rows"]:
            self.problem(ArchiveError(f"{where}: rows {doc['rows']} but its members hold "
                                      f"{total_rows}"))
        if sum(m.size for m in members) != doc["raw_size"]:
            self.problem(ArchiveError(f"{where}: raw_size {doc['raw_size']} but its "
                                      f"members hold {sum(m.size for m in members)} bytes"))
        info.members = members
        info.rows = doc["rows"]
        info.raw_size = doc["raw_size"]
        info.footer = MemberInfo(entry.name, entry.size)
        info.complete = True
        info.verified = verified

    def _check_manifest(self) -> None:
        man = self.manifest
        entries = man["tables"]
        if len(entries) != len(self.tables):
            self.problem(ArchiveError(f"{mf.MANIFEST_MEMBER}: lists {len(entries)} tables, "
                                      f"the archive holds {len(self.tables)}"))
        for doc, info in zip(entries, self.tables):
            # doc: the manifest's entry, as a TableInfo (table_from_manifest)
            if info.error is not None:
                continue        # reported with the table (isolate_tables)
            where = f"{mf.MANIFEST_MEMBER}: table {info.table_id!r}"
            if doc.table_id != info.table_id or doc.index != info.index:
                self.problem(ArchiveError(f"{where}: manifest entry {doc.index} names "
                                          f"{doc.table_id!r}"))
                continue
            for key in ("format", "columns", "types", "definition"):
                if key == "definition":
                    differs = not mf.same_json(doc.stored_definition,
                                               info.stored_definition)
                else:
                    differs = getattr(doc, key) != getattr(info, key)
                if differs:
                    self.problem(ArchiveError(f"{where}: {key} differs from "
                                              f"{info.header.name if info.header else ''}"))
            members = doc.members
            mine = [(m.name, m.size, m.sha256, m.rows) for m in members]
            theirs = [(m.name, m.size, m.sha256, m.rows) for m in info.members]
            if mine != theirs:
                self.problem(ArchiveError(f"{where}: members differ from "
                                          f"{info.footer.name if info.footer else 'footer'}"))
            if doc.rows != info.rows or doc.raw_size != info.raw_size:
                self.problem(ArchiveError(f"{where}: rows/raw_size {doc.rows}/"
                                          f"{doc.raw_size} differ from the footer's "
                                          f"{info.rows}/{info.raw_size}"))
            for key in ("header", "footer"):
                seen, listed = getattr(info, key), getattr(doc, key)
                if seen is not None and (seen.name, seen.size, seen.sha256) != \
                        (listed.name, listed.size, listed.sha256):
                    self.problem(ChecksumError(
                        f"{where}: {key} member {seen.name!r} does not match its entry "
                        "(name, size or SHA-256)"))
            # where the manifest agrees, take what only it knows: the archive offsets
            if mine == theirs:
                info.members = members
            info.header = doc.header
            info.footer = doc.footer
            info.compressed_size = doc.compressed_size

    def _check_index(self) -> None:
        expected = [(m.name, t.table_id) for t in self.tables for m in t.members]
        if self.index != expected:
            listed, wanted = set(self.index), set(expected)     # sets: linear time
            missing = [e for e in self.index if e not in wanted]
            extra = [e for e in expected if e not in listed]
            detail = (f"names {missing[0][0]!r} ({missing[0][1]!r}) which is not a data "
                      "member of that table" if missing else
                      f"lacks {extra[0][0]!r} ({extra[0][1]!r})" if extra else
                      "lists the members in another order")
            self.problem(ArchiveError(f"{mf.INDEX_MEMBER}: {detail}"))

    def _check_end(self) -> None:
        end = self.end
        if end["tables"] != len(self.tables):
            self.problem(ArchiveError(f"{mf.END_MEMBER}: says {end['tables']} tables, the "
                                      f"archive holds {len(self.tables)}"))
        members = len(self.names)
        if end["members"] != members - 1:
            self.problem(ArchiveError(f"{mf.END_MEMBER}: says {end['members']} members "
                                      f"precede it, the archive holds {members - 1}"))
        if self.manifest_sha256 != end["manifest_sha256"]:
            self.problem(ChecksumError(f"{mf.MANIFEST_MEMBER}: SHA-256 does not match "
                                       f"{mf.END_MEMBER}"))
        if hashlib.sha256(self.index_bytes).hexdigest() != end["index_sha256"]:
            self.problem(ChecksumError(f"{mf.INDEX_MEMBER}: SHA-256 does not match "
                                       f"{mf.END_MEMBER}"))

    # ---- hooks for the DaCHS layout (dachs.walk_dachs)
    def start_table(self, info: TableInfo) -> TableState:
        """Begin a table: data members read from now on are recorded for it."""
        state = TableState(info)
        self.state = state
        self.states.append(state)
        return state

    def end_table(self) -> None:
        self.state = None


def table_from_manifest(doc: Dict[str, Any]) -> TableInfo:
    return TableInfo(
        doc["table_id"], doc["index"], doc["format"], doc.get("columns"),
        doc.get("types"), doc.get("definition"), float(doc["dump_time"]),
        doc.get("extra") or {}, [MemberInfo.from_json(m) for m in doc["members"]],
        doc["rows"], doc["raw_size"], doc.get("compressed_size"),
        MemberInfo.from_json(doc["header"]), MemberInfo.from_json(doc["footer"]),
        doc.get("chunk_size"), "dumpcodec", complete=True)


__all__ = ["ArchiveWalker", "TableState", "table_from_manifest"]
