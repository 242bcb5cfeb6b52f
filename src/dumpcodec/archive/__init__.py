"""The archive: a tar (plain, gzip or zstd) of chunked COPY streams with metadata.

Layout and guarantees are specified in docs/FORMAT.md.  Entry points::

    from dumpcodec.archive import open_dump

    with open_dump("db.dump", "w") as w:                 # zstd by default
        w.set_info(server_version="16.2", client_encoding="UTF8")
        with w.add_table("public.t", definition, ["id", "v"], ["int4", "text"]) as t:
            for block in copy_blocks:                    # raw COPY BINARY bytes
                t.write(block)

    with open_dump("db.dump") as r:                      # backend from magic bytes
        for info in r.tables():
            print(info.table_id, info.rows)
        for row in r.read_rows("public.t"):
            ...

DaCHS dumps (gzip tar, ``table_NNN.dump`` + ``index.txt``) are read as well.

Modules, each below the ones after it: :mod:`.limits` (sizes and limits),
:mod:`.manifest` (member names, ``index.txt``, the JSON members), :mod:`.model`
(MemberInfo, TableInfo, VerifyReport), :mod:`._tar` (the strict tar stream),
:mod:`.streams` (file-object helpers), :mod:`.dachs` (the DaCHS layout),
:mod:`.walker` (one pass enforcing the layout), :mod:`.verify`, :mod:`.reader`
(DumpReader), :mod:`.writer` (DumpWriter, TableWriter), :mod:`.registry`
(register_backend, open_dump) and :mod:`.tarball` (the backends); :mod:`.remote`
(archives at fsspec URLs: ranged reads, multipart uploads; imported only for a URL).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .limits import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_MEMBER_SIZE, DEFAULT_MAX_META_SIZE
from .manifest import FORMAT_VERSION, format_index_line, parse_index_file
from .model import MemberInfo, TableInfo, TableInfoTuple, VerifyReport
from .reader import DumpReader, iter_table_infos
from .registry import DEFAULT_BACKEND, Backend, backends, register_backend
from .streams import is_random_access
from .tarball import (DachsReader, GzipReader, GzipWriter, TarReader, TarWriter,
                      ZstdReader, ZstdWriter)  # importing tarball registers them
from .writer import DumpWriter, TableWriter

if TYPE_CHECKING:
    # open_dump's result by mode, for type checkers: a reader for "r", a writer for "w"
    import os
    from typing import Any, BinaryIO, Literal, Mapping, Optional, Union, overload

    @overload
    def open_dump(path_or_file: Union[str, "os.PathLike[str]", BinaryIO],
                  mode: Literal["r", "rb"] = "r", backend: Optional[str] = None, *,
                  storage_options: Optional[Mapping[str, Any]] = None,
                  **options: Any) -> DumpReader: ...

    @overload
    def open_dump(path_or_file: Union[str, "os.PathLike[str]", BinaryIO],
                  mode: Literal["w", "wb"], backend: Optional[str] = None, *,
                  storage_options: Optional[Mapping[str, Any]] = None,
                  **options: Any) -> DumpWriter: ...

    def open_dump(path_or_file: Union[str, "os.PathLike[str]", BinaryIO],
                  mode: str = "r", backend: Optional[str] = None, *,
                  storage_options: Optional[Mapping[str, Any]] = None,
                  **options: Any) -> Union[DumpReader, DumpWriter]: ...
else:
    from .registry import open_dump

__all__ = [
    "open_dump", "register_backend", "backends", "Backend", "DEFAULT_BACKEND",
    "DumpReader", "DumpWriter", "TableWriter", "TableInfo", "MemberInfo",
    "TableInfoTuple", "VerifyReport", "iter_table_infos", "parse_index_file",
    "format_index_line", "FORMAT_VERSION", "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_MEMBER_SIZE", "DEFAULT_MAX_META_SIZE",
    "TarReader", "TarWriter", "GzipReader", "GzipWriter", "ZstdReader", "ZstdWriter",
    "DachsReader", "is_random_access",
]
