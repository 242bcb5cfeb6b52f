"""Sizes the archive layer writes and the limits it holds untrusted archives to.

One module so that the writer and the reader share them: a writer never writes a
member larger than its own reader accepts (docs/FORMAT.md, sections 5 and 6).
"""
from __future__ import annotations

#: bytes of COPY data per chunk member unless ``chunk_size=`` says otherwise (the
#: codec's default too).  A reader holds a few chunks at a time (the one its consumer
#: still has, the one being read), a writer about three (the chunker's buffer, the
#: piece in the writer's thread and, for zstd, the buffer it is compressed from).
#: 8 MiB: members compress as well as 32 MiB ones (0.3% larger on the benchmark
#: tables) and a dump is faster, because an allocation of 32 MiB or more is always a
#: fresh mmap with glibc (about 100,000 page faults more per dump of 346 MB of COPY
#: data).
DEFAULT_CHUNK_SIZE = 8 << 20
#: largest chunk_size a writer accepts (members stay far below ustar's 8 GiB limit)
MAX_CHUNK_SIZE = 1 << 30
#: largest data member a reader accepts by default: one PostgreSQL row is at most 1 GiB
#: (the server's allocation limit), so no honest chunk is larger
DEFAULT_MAX_MEMBER_SIZE = (1 << 30) + (1 << 20)
#: largest manifest.json / index.txt a reader accepts
DEFAULT_MAX_META_SIZE = 64 << 20
#: largest dumpcodec.json, table header/footer, end marker
MAX_SMALL_META_SIZE = 8 << 20


__all__ = ["DEFAULT_CHUNK_SIZE", "MAX_CHUNK_SIZE", "DEFAULT_MAX_MEMBER_SIZE",
           "DEFAULT_MAX_META_SIZE", "MAX_SMALL_META_SIZE"]
