"""The archive's data model: what a reader reports and a writer records.

:class:`MemberInfo` (one member), :class:`TableInfo` (one table: its columns, types,
definition, members, sizes, and what a pass has checked), :class:`VerifyReport`
(what ``verify`` found) and the DaCHS-style :data:`TableInfoTuple`.  Plain data, no
I/O: the writer fills them in, the readers build them from the archive's metadata.
"""
from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from . import manifest as mf


@dataclass
class MemberInfo:
    """One member of the archive as the metadata describes it."""
    name: str
    size: int
    rows: Optional[int] = None
    sha256: Optional[str] = None
    offset: Optional[int] = None           # byte offset in the archive file where the
    compressed_size: Optional[int] = None  # member's tar header (compressed frame) starts
    #: split tables: which of ``extra.split.ranges`` the chunk's rows came from
    range: Optional[int] = None

    def to_json(self) -> Dict[str, Any]:
        doc: Dict[str, Any] = {"name": self.name, "size": self.size, "sha256": self.sha256}
        for key in ("rows", "offset", "compressed_size", "range"):
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        return doc

    @classmethod
    def from_json(cls, doc: Dict[str, Any]) -> "MemberInfo":
        return cls(doc["name"], doc["size"], doc.get("rows"), doc.get("sha256"),
                   doc.get("offset"), doc.get("compressed_size"), doc.get("range"))


@dataclass
class TableInfo:
    """One table of an archive.

    ``definition`` is read from the archive on each access (a reader keeps it as
    text); ``has_definition`` says whether there is one without parsing it.
    ``members`` are the data (chunk) members in order; each is one complete COPY
    stream in ``format``.  ``rows``, ``raw_size`` (COPY bytes) and ``compressed_size``
    (bytes in the archive file, None where unknown) come from the footer/manifest;
    for a DaCHS dump ``rows`` is None, ``raw_size`` the member size, ``definition``,
    ``columns`` and ``types`` None.  ``dump_time`` is UTC unix seconds.

    While streaming (:meth:`DumpReader.iter_tables`) ``complete`` turns True once the
    table's footer has been read and checked, and ``verified`` once every data member
    was also read and its SHA-256 matched the footer; ``error`` holds why the table's
    data or footer failed its checks (what its chunk iterator raised), else None.
    """
    table_id: str
    index: int
    format: str = "binary"
    columns: Optional[List[str]] = None
    types: Optional[List[str]] = None
    definition: Optional[Dict[str, Any]] = None
    dump_time: Optional[float] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    members: List[MemberInfo] = field(default_factory=list)
    rows: Optional[int] = None
    raw_size: Optional[int] = None
    compressed_size: Optional[int] = None
    header: Optional[MemberInfo] = None
    footer: Optional[MemberInfo] = None
    chunk_size: Optional[int] = None
    layout: str = "dumpcodec"
    complete: bool = False
    verified: bool = False
    error: Optional[Exception] = field(default=None, repr=False, compare=False)

    @property
    def has_definition(self) -> bool:
        return self.__dict__.get("_definition") is not None

    @property
    def stored_definition(self) -> Any:
        """The definition as held: a dict, a :class:`.manifest.JSONText` (a reader
        keeps definitions as text, parsed on each access of ``definition``), or None."""
        return self.__dict__.get("_definition")

    @property
    def member_names(self) -> List[str]:
        return [m.name for m in self.members]

    # the keys of ``extra`` that mean something (docs/FORMAT.md, section 5.2)
    @property
    def has_data(self) -> bool:
        """False when the dump left the rows out on purpose (definition only)."""
        return mf.table_has_data(self.extra)

    @property
    def via_root(self) -> bool:
        """True when a partitioned table's rows were dumped through its root."""
        return mf.table_via_root(self.extra)

    @property
    def where(self) -> Optional[str]:
        """The row filter the dump applied (informative), None for every row."""
        return mf.table_where(self.extra)

    @property
    def as_text(self) -> List[str]:
        """Columns whose data is their text (cast back on restore)."""
        return mf.table_as_text(self.extra)

    @property
    def sequence_values(self) -> List[mf.SequenceValue]:
        """The dumped states of the sequences the table's columns own."""
        return mf.table_sequences(self.extra)

    def to_json(self) -> Dict[str, Any]:
        """The table as in ``manifest.json`` (plus ``layout``), for ``ls --json``."""
        doc = {
            "table_id": self.table_id, "index": self.index, "format": self.format,
            "columns": self.columns, "types": self.types, "definition": self.definition,
            "dump_time": self.dump_time, "extra": self.extra, "rows": self.rows,
            "raw_size": self.raw_size, "compressed_size": self.compressed_size,
            "members": [m.to_json() for m in self.members],
        }
        if self.header is not None:
            doc["header"] = self.header.to_json()
        if self.footer is not None:
            doc["footer"] = self.footer.to_json()
        if self.chunk_size is not None:
            doc["chunk_size"] = self.chunk_size
        return doc


def _get_definition(self: TableInfo) -> Optional[Dict[str, Any]]:
    value = self.__dict__.get("_definition")
    return value.parse() if isinstance(value, mf.JSONText) else value


def _set_definition(self: TableInfo, value: Any) -> None:
    self.__dict__["_definition"] = value


# ``definition`` stays a dataclass field (constructor, repr, comparison, to_json) whose
# value a reader may hold as JSON text (memory: a 10,000-table archive's definitions
# as dicts took about 100 MB): the attribute parses it on access
TableInfo.definition = property(  # type: ignore[assignment]
    _get_definition, _set_definition,
    doc="The table definition as parsed JSON (a fresh dict on each access when the "
        "reader holds it as text), or None (DaCHS).")


#: what :func:`iter_table_infos` yields, after DaCHS's ``iterTableInfos``
TableInfoTuple = namedtuple("TableInfoTuple",
                            "member table_id has_definition dump_time size")


@dataclass
class VerifyReport:
    """What :meth:`DumpReader.verify` found: ``ok`` only when nothing is wrong."""
    layout: Optional[str]
    tables: List[TableInfo]
    problems: List[str]
    complete: bool
    members: int = 0
    rows: int = 0

    @property
    def ok(self) -> bool:
        return self.complete and not self.problems


__all__ = ["MemberInfo", "TableInfo", "TableInfoTuple", "VerifyReport"]
