"""Every exception dumpcodec raises on purpose lives here.

One module so that callers (and the CLI) can catch by category:
``CopyFormatError`` for malformed COPY BINARY input, ``ArchiveError`` for a bad or
incomplete archive, ``SchemaError`` for table definitions, ``RestoreError`` and
``DumpError`` for operations on a live database.
"""
from __future__ import annotations

from typing import Optional


class DumpcodecError(Exception):
    """Base class of all dumpcodec errors."""


class CopyFormatError(DumpcodecError, ValueError):
    """A COPY BINARY stream is malformed.

    The message names the byte offset (absolute, from the start of the stream),
    the row (1-based) and the column (1-based field number, and its name when the
    decoder knows it), e.g.::

        field 3 ("created") of row 1021 at byte 88211: length 2147483000 exceeds the 1 GiB limit

    Both codec implementations raise this class with the same message for the same
    input.  The attributes are None where they do not apply (a header error has no row).
    """

    def __init__(self, message: str, offset: Optional[int] = None,
                 row: Optional[int] = None, column: Optional[int] = None):
        super().__init__(message)
        self.offset = offset
        self.row = row
        self.column = column


class EncodeError(DumpcodecError, ValueError):
    """A value cannot be encoded for its column (out of range, NUL in text, ...)."""


class ArchiveError(DumpcodecError):
    """An archive is malformed, corrupt, unsafe, or not one we can read."""


class IncompleteArchiveError(ArchiveError):
    """An archive whose writer did not finish (no end marker, truncated)."""


class StorageError(ArchiveError):
    """Object storage (an fsspec URL: ``s3://``, ``gs://``, ...) failed for good, after
    the retries of transient errors: the message names the URL and the reason in one
    line, never a credential."""


class ChecksumError(ArchiveError):
    """A member's content does not match the checksum in the manifest."""


class SchemaError(DumpcodecError):
    """A table definition cannot be captured, parsed, or turned into DDL."""


class UnsafeExpressionError(SchemaError):
    """A stored SQL expression is not a single expression and is refused."""


class SelectorError(SchemaError, LookupError):
    """A table selector names nothing, or names something that is not a table."""


class NoMatchError(SelectorError):
    """A selector or pattern matches nothing at all (pg_dump's ``--strict-names``
    error; without it, a selection reports the pattern and goes on)."""


class DumpError(DumpcodecError):
    """Creating a dump failed."""


class RestoreError(DumpcodecError):
    """Restoring a dump (or one table of it) failed."""
