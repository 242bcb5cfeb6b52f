"""The codec API, written down once: what ``dumpcodec._fastcopy`` (the Cython core,
``src/_fastcopy.pyx``) and ``dumpcodec.copy.pure`` (the pure-Python twin) both define.

The switch :mod:`dumpcodec.copy` re-exports exactly these names from the active
implementation.  ``tests/codec/test_codec_api.py`` holds both implementations to this file:
the same ``__all__``, the same public members of each class, the same parameters
(names, kinds, defaults) of each function and method.  Change an implementation's
API here first, then in both.  Behaviour and messages: see ``dumpcodec.copy.pure``.
"""
from typing import Any, BinaryIO, Iterable, Iterator, List, Optional, Sequence, Tuple

from dumpcodec.copy.types import TypeInfo

__all__ = ["Decoder", "iter_rows", "Encoder", "write_stream", "Scanner", "Chunker", "scan",
           "DEFAULT_CHUNK_SIZE", "DEFAULT_READ_SIZE", "DEFAULT_BLOCK_SIZE", "MAX_FIELD_SIZE",
           "SIGNATURE", "HEADER", "TRAILER", "HEADER_SIZE", "FLAG_OIDS"]

#: Largest piece of one COPY BINARY stream the Chunker emits.
DEFAULT_CHUNK_SIZE: int
#: Bytes per read() in iter_rows.
DEFAULT_READ_SIZE: int
#: Bytes per write() in write_stream.
DEFAULT_BLOCK_SIZE: int
#: Largest declared field (and header extension) length accepted: 1 GiB.
MAX_FIELD_SIZE: int
#: The 11-byte signature that starts every stream.
SIGNATURE: bytes
#: The header the Encoder writes: signature, flags 0, extension length 0.
HEADER: bytes
#: The 2-byte trailer (field count -1).
TRAILER: bytes
#: Size of the fixed header (signature, flags, extension length): 19.
HEADER_SIZE: int
#: The header flag bit of old WITH OIDS streams.
FLAG_OIDS: int


class Decoder:
    """Push decoder: ``feed`` pieces split anywhere, get complete rows back."""
    rows: int
    done: bool
    flags: Optional[int]
    header_size: Optional[int]
    tuple_end: int

    def __init__(self, types: Optional[Sequence[Any]] = None, *,
                 names: Optional[Sequence[str]] = None, raw: bool = False) -> None: ...
    @property
    def offset(self) -> int: ...
    @property
    def types(self) -> Optional[List[TypeInfo]]: ...
    def feed(self, data) -> List[tuple]: ...
    def close(self) -> None: ...


def iter_rows(fileobj: BinaryIO, types: Optional[Sequence[Any]] = None, *,
              names: Optional[Sequence[str]] = None, raw: bool = False,
              read_size: int = ...) -> Iterator[tuple]: ...


class Encoder:
    """Rows in, COPY BINARY bytes out, in large blocks."""
    rows: int

    def __init__(self, types: Optional[Sequence[Any]] = None, *,
                 names: Optional[Sequence[str]] = None) -> None: ...
    @property
    def types(self) -> Optional[List[TypeInfo]]: ...
    def header(self) -> bytes: ...
    def trailer(self) -> bytes: ...
    def encode(self, rows: Iterable[Sequence[Any]]) -> bytes: ...


def write_stream(fileobj: BinaryIO, rows: Iterable[Sequence[Any]],
                 types: Optional[Sequence[Any]] = None, *,
                 names: Optional[Sequence[str]] = None, block_size: int = ...) -> int: ...


class Scanner:
    """Walks the framing without decoding values; counts rows."""
    rows: int
    done: bool
    flags: Optional[int]
    header_size: Optional[int]
    tuple_end: int

    def __init__(self, ncols: Optional[int] = None) -> None: ...
    @property
    def offset(self) -> int: ...
    def feed(self, data) -> int: ...
    def close(self) -> None: ...


class Chunker:
    """Cuts one COPY BINARY stream into complete streams of bounded size."""
    rows: int
    done: bool
    flags: Optional[int]
    header_size: Optional[int]
    tuple_end: int
    chunk_size: int

    def __init__(self, chunk_size: int = ..., ncols: Optional[int] = None) -> None: ...
    @property
    def offset(self) -> int: ...
    def feed(self, data) -> List[Tuple[bytes, int]]: ...
    def close(self) -> List[Tuple[bytes, int]]: ...


def scan(buf) -> Tuple[int, int]: ...
