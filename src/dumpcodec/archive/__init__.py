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
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .base import (DEFAULT_BACKEND, DEFAULT_CHUNK_SIZE, DEFAULT_MAX_MEMBER_SIZE,
                   DEFAULT_MAX_META_SIZE, Backend, DumpReader, DumpWriter, MemberInfo,
                   TableInfo, TableInfoTuple, TableWriter, VerifyReport, backends,
                   iter_table_infos, parse_index_file, register_backend)

if TYPE_CHECKING:
    # open_dump's result by mode, for type checkers: a reader for "r", a writer for "w"
    import os
    from typing import Any, BinaryIO, Literal, Optional, Union, overload

    @overload
    def open_dump(path_or_file: Union[str, "os.PathLike[str]", BinaryIO],
                  mode: Literal["r", "rb"] = "r", backend: Optional[str] = None,
                  **options: Any) -> DumpReader: ...

    @overload
    def open_dump(path_or_file: Union[str, "os.PathLike[str]", BinaryIO],
                  mode: Literal["w", "wb"], backend: Optional[str] = None,
                  **options: Any) -> DumpWriter: ...

    def open_dump(path_or_file: Union[str, "os.PathLike[str]", BinaryIO],
                  mode: str = "r", backend: Optional[str] = None,
                  **options: Any) -> Union[DumpReader, DumpWriter]: ...
else:
    from .base import open_dump
from . import tarball  # noqa: F401  (registers zstd, gzip, tar)
from .tarball import (GzipReader, GzipWriter, TarReader, TarWriter, ZstdReader,
                      ZstdWriter)
from . import dachs  # noqa: F401  (registers dachs)
from .dachs import DachsReader
from .manifest import FORMAT_VERSION, format_index_line

__all__ = [
    "open_dump", "register_backend", "backends", "Backend", "DEFAULT_BACKEND",
    "DumpReader", "DumpWriter", "TableWriter", "TableInfo", "MemberInfo",
    "TableInfoTuple", "VerifyReport", "iter_table_infos", "parse_index_file",
    "format_index_line", "FORMAT_VERSION", "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_MEMBER_SIZE", "DEFAULT_MAX_META_SIZE",
    "TarReader", "TarWriter", "GzipReader", "GzipWriter", "ZstdReader", "ZstdWriter",
    "DachsReader",
]
