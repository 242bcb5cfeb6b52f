"""DaCHS dumps: their layout, and what reading whole-table members needs.

A DaCHS dump (``gavo.rsc.dumping``) is a gzip tar with members ``table_NNN.dump``
(binary COPY) or ``table_NNN.textdump`` (text COPY), one per table, and ``index.txt``
(``member-name table-id`` lines) written last; no schema.  Readers recognise that
layout whatever the compression (:func:`walk_dachs` is the walker's part for it); the
``dachs`` backend (:mod:`.tarball`) forces it.  A DaCHS member holds a whole table, so
it is read in pieces and re-cut into complete COPY streams of about ``chunk_size``
bytes (:func:`rechunk`), keeping memory bounded by one chunk.

Parsing text COPY into rows (``text_rows``) lives in :mod:`dumpcodec.copy.textcopy`;
the name is also importable from here.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from ..copy import Chunker
from ..copy.textcopy import text_rows  # noqa: F401  (importable from here too)
from ..errors import ArchiveError, CopyFormatError, IncompleteArchiveError
from . import manifest as mf
from ._tar import TarEntry, drain_end
from .model import MemberInfo, TableInfo


def dachs_format(member: str) -> str:
    """COPY format of a DaCHS member by its suffix: ``.textdump`` is text."""
    return "text" if member.endswith(".textdump") else "binary"


def rechunk(pieces: Iterable, fmt: str, chunk_size: int, member: str) -> Iterator[bytes]:
    """Re-cut one COPY stream arriving in ``pieces`` into complete streams.

    Binary: through the codec's Chunker (each result header + whole tuples +
    trailer).  Text: cut after newlines.  A framing error raises ArchiveError naming
    the member.
    """
    if fmt == "binary":
        chunker = Chunker(chunk_size)
        try:
            for piece in pieces:
                for out, _rows in chunker.feed(bytes(piece)):
                    yield out
            for out, _rows in chunker.close():
                yield out
        except CopyFormatError as exc:
            raise ArchiveError(f"member {member!r}: {exc}") from exc
        return
    buf = bytearray()
    for piece in pieces:
        buf += piece
        if len(buf) >= chunk_size:
            cut = buf.rfind(b"\n")
            if cut >= 0:
                out = bytes(buf[:cut + 1])
                del buf[:cut + 1]
                yield out
    if buf:
        if not buf.endswith(b"\n"):
            raise ArchiveError(f"member {member!r}: text COPY data does not end with a "
                               "newline (truncated?)")
        yield bytes(buf)


def walk_dachs(walker: Any, entry: Optional[TarEntry]) -> Iterator[tuple]:
    """The walker's events for a DaCHS dump, from its first member ``entry`` on.

    ``walker`` is the :class:`.walker.ArchiveWalker` doing the pass (passed in, not
    imported, so that this module stays below it).  Yields ``("index", entries)`` and
    per member ``("dachs", TableInfo, TarEntry)``; at the end builds
    ``walker.tables`` from ``index.txt``, which DaCHS writes last.
    """
    tar = walker.tar
    while entry is not None:
        walker.note_name(entry)
        if entry.name == mf.INDEX_MEMBER:
            walker.index_bytes = walker.meta(entry, walker.reader.max_meta_size)
            walker.index = mf.parse_index_file(walker.index_bytes)
            yield ("index", walker.index)
        else:
            walker.dachs_members.append(entry)
            info = TableInfo(entry.name, len(walker.dachs_members) - 1,
                             dachs_format(entry.name), dump_time=entry.mtime,
                             members=[MemberInfo(entry.name, entry.size)],
                             raw_size=entry.size, layout="dachs", complete=True)
            state = walker.start_table(info)
            state.seen.append(entry)
            yield ("dachs", info, entry)
            walker.end_table()
        entry = tar.next()
    drain_end(tar)
    if walker.index is None:
        raise IncompleteArchiveError(
            f"DaCHS dump without {mf.INDEX_MEMBER} (DaCHS writes it last: the dump "
            "is truncated or its writer did not finish)")
    walker.tables = dachs_tables(walker.index, walker.dachs_members, walker.reader.plain,
                                 walker.problem)


def dachs_tables(index: List[Tuple[str, str]], members: List[TarEntry], plain: bool,
                 problem: Callable[[ArchiveError], None]) -> List[TableInfo]:
    """The tables of a DaCHS dump: its ``members`` grouped by the ids ``index.txt``
    gives them, in index order.  ``plain``: stream offsets are file offsets (no
    compression).  Members the index names twice raise ArchiveError; members missing
    or not named go to ``problem``."""
    by_name = {e.name: e for e in members}
    listed = set()
    tables: Dict[str, TableInfo] = {}
    for member, table_id in index:
        if member in listed:
            raise ArchiveError(f"{mf.INDEX_MEMBER}: member {member!r} listed twice")
        listed.add(member)
        entry = by_name.get(member)
        if entry is None:
            problem(ArchiveError(f"{mf.INDEX_MEMBER}: names member {member!r} "
                                 f"(table {table_id!r}) which is not in the archive"))
            continue
        info = tables.get(table_id)
        if info is None:
            info = tables[table_id] = TableInfo(
                table_id, len(tables), dachs_format(member), dump_time=entry.mtime,
                raw_size=0, layout="dachs", complete=True)
        # a stream offset is a file offset only without compression
        info.members.append(MemberInfo(member, entry.size,
                                       offset=entry.header_offset if plain else None))
        info.raw_size += entry.size
    for e in members:
        if e.name not in listed:
            problem(ArchiveError(f"member {e.name!r} is not listed in {mf.INDEX_MEMBER}"))
    return list(tables.values())


__all__ = ["dachs_format", "rechunk", "text_rows", "walk_dachs",
           "dachs_tables"]
