"""A strict, streaming tar reader and the tar blocks the writer emits.

Why not ``tarfile`` for reading: in stream mode it ends the archive silently at a bad
or truncated header in the middle, and it has no bound on what a member may declare.
Here every header is checked (``TarInfo.frombuf`` verifies the checksum), only regular
files are accepted (links, devices, directories, sparse files are refused with
ArchiveError), names are checked before anything else looks at them, every declared
size is checked against a caller-given limit before any data is read, and running out
of input anywhere but after the end-of-archive blocks is IncompleteArchiveError.
Nothing is ever extracted to disk.
"""
from __future__ import annotations

import gzip
import tarfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator, Optional

import zstandard

from ..errors import ArchiveError, IncompleteArchiveError

BLOCK = 512
PIECE = 1 << 20            # read granularity for streaming and skipping
_ZERO_BLOCK = bytes(BLOCK)
MAX_EXT_HEADER = 1 << 20   # pax / GNU long-name headers: names and a few numbers

# errors the decompressors raise on corrupt input
_CORRUPT = (zlib.error, gzip.BadGzipFile, zstandard.ZstdError)


@dataclass
class TarEntry:
    """One regular member: its name, size and where it sits in the tar stream."""
    name: str
    size: int
    mtime: float
    header_offset: int     # offset of its (first) header block in the tar stream
    data_offset: int       # offset of its data in the tar stream


def check_member_name(name: str, where: str) -> None:
    """Refuse names that could escape a directory if someone extracted the archive."""
    if not name or "\x00" in name:
        raise ArchiveError(f"unsafe member name {name!r} {where}")
    if name.startswith("/") or name.startswith("\\") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"unsafe member name {name!r} {where}: absolute path")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise ArchiveError(f"unsafe member name {name!r} {where}: contains '..'")


def pad(size: int) -> int:
    return (-size) % BLOCK


def _tarfile_header(name: str, size: int, mtime: float) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = 0o644
    info.type = tarfile.REGTYPE
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")


#: the header of an empty member named "x" at time 0, which member_header patches
_TEMPLATE = _tarfile_header("x", 0, 0)
_OCTAL_11 = 8 ** 11
#: the template's checksum without its name, size, time and checksum fields (the
#: checksum field counts as eight spaces)
_TEMPLATE_SUM = (sum(_TEMPLATE) - sum(_TEMPLATE[0:100]) - sum(_TEMPLATE[124:156])
                 + 8 * 32)


def member_header(name: str, size: int, mtime: float) -> bytes:
    """The ustar header block of a regular file member (mode 0644, no owner): the
    bytes :mod:`tarfile` writes, with name, size, time and checksum put into a
    template (a tenth of the time: thousands of small tables write three each)."""
    raw = name.encode("utf-8")
    mtime = int(mtime)
    if len(raw) > 100 or not 0 <= size < _OCTAL_11 or not 0 <= mtime < _OCTAL_11:
        return _tarfile_header(name, size, mtime)     # a prefix field, large numbers
    fields = b"%011o\0%011o\0" % (size, mtime)
    check = _TEMPLATE_SUM + sum(raw) + sum(fields)
    return b"".join((raw, bytes(100 - len(raw)), _TEMPLATE[100:124], fields,
                     b"%06o\0 " % check, _TEMPLATE[156:]))


END_OF_ARCHIVE = bytes(2 * BLOCK)


class TarStreamReader:
    """Walk the members of a tar stream read from ``src`` (already decompressed).

    ``next()`` returns the next regular member or None after the end-of-archive
    blocks; the caller then reads its data with ``read_data``/``iter_data`` or leaves
    it, in which case the next ``next()`` skips it (by seeking when ``seek`` is given,
    else by reading and discarding).  ``start`` is the stream offset ``src`` is at.
    """

    def __init__(self, src: BinaryIO, *, start: int = 0,
                 seek: Optional[Callable[[int], None]] = None,
                 size: Optional[int] = None):
        self.src = src
        self.pos = start
        self._seek = seek
        self._size = size            # stream size when known (seekable plain tar)
        self._pending: Optional[TarEntry] = None
        self._pending_left = 0       # data + padding of the current entry not yet read
        self.last_name: Optional[str] = None
        self.ended = False
        self._scratch = bytearray(PIECE)

    # ---------------------------------------------------------------- low level
    def _where(self) -> str:
        if self._pending is not None:
            return f"in member {self._pending.name!r}"
        if self.last_name is not None:
            return f"after member {self.last_name!r}"
        return "at the start of the archive"

    def _readinto(self, view: memoryview) -> int:
        try:
            return self.src.readinto(view)
        except EOFError as exc:
            raise IncompleteArchiveError(
                f"compressed data ends early {self._where()} (stream offset {self.pos}): "
                f"{exc}") from None
        except _CORRUPT as exc:
            raise ArchiveError(f"corrupt compressed data {self._where()} "
                               f"(stream offset {self.pos}): {exc}") from None

    def _read_exact(self, n: int, what: str) -> bytearray:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self._readinto(view[got:])
            if not k:
                raise IncompleteArchiveError(
                    f"archive ends {self._where()}: {what} needs {n} bytes at stream offset "
                    f"{self.pos - got}, only {got} present")
            got += k
            self.pos += k
        return buf

    def _discard(self, n: int) -> None:
        if n <= 0:
            return
        if self._seek is not None:
            if self._size is not None and self.pos + n > self._size:
                raise IncompleteArchiveError(
                    f"archive ends {self._where()}: {n} bytes of data and padding "
                    f"declared at stream offset {self.pos}, only "
                    f"{max(0, self._size - self.pos)} present")
            self._seek(self.pos + n)
            self.pos += n
            return
        view = memoryview(self._scratch)
        left = n
        while left:
            k = self._readinto(view[:min(left, PIECE)])
            if not k:
                raise IncompleteArchiveError(
                    f"archive ends {self._where()}: {left} of {n} bytes missing")
            left -= k
            self.pos += k

    # ---------------------------------------------------------------- members
    def next(self) -> Optional[TarEntry]:
        """The next regular member, or None at the end-of-archive blocks."""
        if self.ended:
            return None
        if self._pending is not None:
            self._discard(self._pending_left)
            self.last_name = self._pending.name
            self._pending = None
        long_name = None
        pax: dict = {}
        while True:
            header_offset = self.pos
            first = self._readinto(memoryview(self._scratch)[:BLOCK])
            if first == 0:
                raise IncompleteArchiveError(
                    f"archive ends {self._where()} without the end-of-archive blocks "
                    f"(stream offset {self.pos}): the writer did not finish or the file "
                    "is truncated")
            self.pos += first
            block = bytes(self._scratch[:first])
            if first < BLOCK:
                block += bytes(self._read_exact(BLOCK - first, "a tar header"))
            if block == _ZERO_BLOCK:
                # end of archive: two zero blocks (a cut inside them is truncation)
                second = bytes(self._read_exact(BLOCK, "the end-of-archive blocks"))
                if second != _ZERO_BLOCK:
                    raise ArchiveError(f"lone zero block at stream offset {header_offset} "
                                       f"{self._where()} (corrupt archive)")
                self.ended = True
                return None
            try:
                info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
            except tarfile.HeaderError as exc:
                raise ArchiveError(f"invalid tar header at stream offset {header_offset} "
                                   f"{self._where()}: {exc}") from None
            size = info.size
            if size < 0:
                raise ArchiveError(f"negative size in tar header at stream offset "
                                   f"{header_offset}")
            if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                             tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
                if size > MAX_EXT_HEADER:
                    raise ArchiveError(f"extended tar header at stream offset "
                                       f"{header_offset} declares {size} bytes (limit "
                                       f"{MAX_EXT_HEADER})")
                data = bytes(self._read_exact(size, "an extended header"))
                self._discard(pad(size))
                if info.type == tarfile.GNUTYPE_LONGNAME:
                    long_name = data.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
                elif info.type == tarfile.GNUTYPE_LONGLINK:
                    raise ArchiveError(f"link member at stream offset {header_offset} "
                                       "refused: only regular files are allowed")
                elif info.type in (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE):
                    pax.update(_parse_pax(data, header_offset))
                continue   # global pax headers carry nothing we use
            name = long_name if long_name is not None else info.name
            if "path" in pax:
                name = pax["path"]
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise ArchiveError(f"bad pax size {pax['size']!r} at stream offset "
                                       f"{header_offset}") from None
                if size < 0:
                    raise ArchiveError(f"negative pax size at stream offset {header_offset}")
            where = f"at stream offset {header_offset}"
            if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                kind = {tarfile.SYMTYPE: "symbolic link", tarfile.LNKTYPE: "hard link",
                        tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
                        tarfile.DIRTYPE: "directory", tarfile.FIFOTYPE: "fifo",
                        tarfile.CONTTYPE: "contiguous file",
                        tarfile.GNUTYPE_SPARSE: "sparse file"}.get(info.type,
                                                                   f"type {info.type!r}")
                raise ArchiveError(f"member {name!r} {where} is a {kind}: only regular "
                                   "files are allowed")
            check_member_name(name, where)
            mtime = info.mtime
            if "mtime" in pax:
                try:
                    mtime = float(pax["mtime"])
                except ValueError:
                    pass
            entry = TarEntry(name, size, float(mtime), header_offset, self.pos)
            self._pending = entry
            self._pending_left = size + pad(size)
            return entry

    def read_data(self, entry: TarEntry) -> bytearray:
        """All the data of the current member (the caller bounded ``entry.size``)."""
        self._check_current(entry)
        data = self._read_exact(entry.size, f"member {entry.name!r} data")
        self._pending_left -= entry.size
        self._finish(entry)
        return data

    def iter_data(self, entry: TarEntry, piece: int = PIECE) -> Iterator[memoryview]:
        """The data of the current member in pieces of at most ``piece`` bytes.

        The pieces are views of one reused buffer: consume each before the next.
        """
        self._check_current(entry)
        buf = bytearray(min(piece, max(entry.size, 1)))
        view = memoryview(buf)
        left = entry.size
        while left:
            k = self._readinto(view[:min(left, len(buf))])
            if not k:
                raise IncompleteArchiveError(
                    f"archive ends in member {entry.name!r}: it declares {entry.size} "
                    f"bytes, only {entry.size - left} present")
            self.pos += k
            left -= k
            self._pending_left -= k
            yield view[:k]
        self._finish(entry)

    def _check_current(self, entry: TarEntry) -> None:
        if self._pending is not entry or self._pending_left != entry.size + pad(entry.size):
            raise ArchiveError(f"member {entry.name!r} is not the current unread member")

    def _finish(self, entry: TarEntry) -> None:
        left = self._pending_left
        self._pending_left = 0
        # the padding: read (not seek) so that truncation right after the data shows
        if left:
            self._read_exact(left, f"padding of member {entry.name!r}")
        self._pending = None
        self.last_name = entry.name


def _parse_pax(data: bytes, offset: int) -> dict:
    """Records ``"%d key=value\\n"`` of a pax extended header."""
    out = {}
    pos = 0
    while pos < len(data):
        if data[pos:pos + 1] == b"\x00":
            break
        sp = data.find(b" ", pos)
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise ArchiveError(f"malformed pax header at stream offset {offset}") from None
        if sp < 0 or length <= 0 or pos + length > len(data):
            raise ArchiveError(f"malformed pax header at stream offset {offset}")
        record = data[sp + 1:pos + length - 1]
        key, eq, value = record.partition(b"=")
        if not eq:
            raise ArchiveError(f"malformed pax record at stream offset {offset}")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def drain_end(tar: TarStreamReader, limit: int = PIECE) -> None:
    """After the end-of-archive blocks: read what follows, at most ``limit`` bytes.

    Reading to the end makes the decompressor check the last frame (gzip CRC and
    length, truncation).  Only zero bytes (tar record padding) may follow; anything
    else raises ArchiveError.  More than ``limit`` zero bytes are not read (never
    decompress an unbounded tail).
    """
    view = memoryview(tar._scratch)
    seen = 0
    while seen < limit:
        k = tar._readinto(view[:min(PIECE, limit - seen)])
        if not k:
            return
        if any(view[:k].tobytes()):
            raise ArchiveError(f"data after the end-of-archive blocks (stream offset "
                               f"{tar.pos}, after member {tar.last_name!r})")
        seen += k
        tar.pos += k
