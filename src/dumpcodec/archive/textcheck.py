"""Text COPY data whose rows PostgreSQL would split differently: refused.

An archive counts a text member's rows as its lines (LF-terminated), and ``verify``,
``cat`` and ``read_rows`` read them so.  PostgreSQL's COPY FROM (text format) splits
its input into rows by other rules, and where the two disagree a load would store
other rows than the archive shows.  Checked against PostgreSQL 15 and 16, the data
may not hold (outside an escape):

* ``\\.`` followed by a line end: the end-of-data marker.  The server loads what
  precedes it on the line as the last row and drops the rest without an error (a line
  ``\\.`` alone, or a field ending in ``\\.``).  Followed by anything else it is an
  error ("end-of-copy marker corrupt").
* a backslash right before a LF: the line end becomes part of a value, so the server
  sees one row where the archive counts two.
* a carriage return: a line end for the server (or an error), none for the archive.
* in the client encodings whose multibyte characters may contain ASCII bytes
  (SJIS, SHIFT_JIS_2004, BIG5, GBK, UHC, GB18030, JOHAB), the server skips a
  character's trailing bytes whatever they are: a 0x5C there is no backslash, and a
  LF right after a lead byte is part of the character.  The scan follows the server
  (``CopyReadLineText``: the length of a character from its first byte) there.

PostgreSQL's COPY TO never writes any of these (it escapes backslash, CR and LF), so
honest data never holds them.  A member that does is refused with an ArchiveError
naming the member and the line, before its data reaches anyone.
"""
from __future__ import annotations

import re
from typing import Optional

from ..errors import ArchiveError

# ASCII bytes that need a look: backslash and CR (LF ends a line, a plain token)
_PLAIN_ASCII = rb"\x00-\x0c\x0e-\x5b\x5d-\x7f"
_ESCAPE = rb"\\[^.\n]"             # a backslash and the one byte it escapes

# the bytes a character is made of, by the server's rule for its first byte
# (pg_encoding_mblen); single-byte encodings and those whose multibyte characters
# are all high bytes (UTF8, EUC_*, LATIN*, ...) are read byte by byte
_CHARSETS = {
    "bytes": (_PLAIN_ASCII + rb"\x80-\xff", None),
    # SJIS: 0xA1-0xDF one byte (half-width kana), any other high byte leads two
    "sjis": (_PLAIN_ASCII + rb"\xa1-\xdf", rb"[\x80-\xa0\xe0-\xff][^\n]"),
    # BIG5, GBK, UHC, GB18030 (a four-byte GB18030 character is two such pairs)
    "high2": (_PLAIN_ASCII, rb"[\x80-\xff][^\n]"),
    # JOHAB: 0x8F leads three bytes, any other high byte two
    "johab": (_PLAIN_ASCII, rb"\x8f[^\n][^\n]|[\x80-\x8e\x90-\xff][^\n]"),
}
#: PostgreSQL's names of the client encodings that embed ASCII bytes, with their
#: aliases, as ``pg_char_to_encoding`` matches them (lower case, letters and digits)
_EMBEDDING = {
    **dict.fromkeys(("sjis", "shiftjis", "mskanji", "win932", "windows932",
                     "shiftjis2004"), "sjis"),
    **dict.fromkeys(("big5", "win950", "windows950", "gbk", "win936", "windows936",
                     "uhc", "win949", "windows949", "gb18030"), "high2"),
    "johab": "johab",
}


def _scanner(charset: str) -> "re.Pattern[bytes]":
    single, multi = _CHARSETS[charset]
    token = _ESCAPE + (b"|" + multi if multi else b"")
    # unrolled: runs of plain bytes (a tight loop in the regex engine) between tokens
    return re.compile(rb"[%s\n]*(?:(?:%s)[%s\n]*)*" % (single, token, single))


_SCANNERS = {name: _scanner(name) for name in _CHARSETS}


def charset_of(encoding: Optional[str]) -> str:
    """How the server reads a client encoding's bytes when it splits rows."""
    key = re.sub(r"[^a-z0-9]", "", (encoding or "").lower())
    return _EMBEDDING.get(key, "bytes")


class TextCopyCheck:
    """Checks one text COPY member's data, in whole-line chunks (:meth:`chunk`) or
    in pieces cut anywhere (:meth:`piece`, then :meth:`close`).

    ``where`` names the member (and table) in messages; ``encoding`` is the
    archive's client encoding (PostgreSQL's name).
    """

    def __init__(self, where: str, encoding: Optional[str] = None):
        self.where = where
        self.charset = charset_of(encoding)
        self.encoding = encoding
        self._scan = _SCANNERS[self.charset]
        self._lines = 0          # lines before the data not yet checked
        self._carry = b""        # an unfinished escape or character from the last piece

    def chunk(self, data) -> None:
        """Check data that ends at a line end (or is empty)."""
        self.piece(data)
        self.close()

    def piece(self, data) -> None:
        """Check the next piece of the member's data, cut anywhere."""
        data = self._carry + bytes(data) if self._carry else bytes(data)
        if self.charset == "bytes" and b"\r" not in data and (
                b"\\" not in data or (b"\\." not in data and b"\\\n" not in data
                                       and not data.endswith(b"\\"))):
            # nothing to look at, found by searches in C: the usual case
            self._lines += data.count(b"\n")
            self._carry = b""
            return
        end = self._scan.match(data).end()
        if end < len(data) and not self._unfinished(data, end):
            self._fail(data, end)
        self._lines += data.count(b"\n", 0, end)
        self._carry = data[end:]

    def close(self) -> None:
        """The member ends here: nothing may be left unfinished."""
        if self._carry:
            data, self._carry = self._carry, b""
            self._fail(data, 0)

    def _unfinished(self, data: bytes, end: int) -> bool:
        # the rest may be a token cut by the piece's end: a backslash, a lead byte
        # (JOHAB 0x8F: with one more byte); anything else has failed
        rest = data[end:]
        if len(rest) > 2:
            return False
        return self._scan.fullmatch(rest + (b"xx" if self.charset != "bytes" else b"x")
                                    ) is not None

    def _fail(self, data: bytes, pos: int) -> None:
        line = self._lines + data.count(b"\n", 0, pos) + 1
        c = data[pos:pos + 1]
        nxt = data[pos + 1:pos + 2]
        if c == b"\r":
            what = ("holds a carriage return, which PostgreSQL takes for the end of the "
                    "row (or refuses): it writes one as \\r")
        elif c == b"\\" and nxt == b".":
            what = ("holds \\. (PostgreSQL's end-of-data marker): a load would stop "
                    "there and drop the rest, or fail")
        elif c == b"\\":
            what = ("ends in a backslash: PostgreSQL would take the line end for part "
                    "of a value (one row where the archive counts two)")
        else:
            what = (f"ends inside a multibyte {self.encoding} character: PostgreSQL "
                    "would take the line end for part of it")
        raise ArchiveError(f"{self.where} line {line}: text COPY data {what}; "
                           "PostgreSQL never writes this, the member is refused")


__all__ = ["TextCopyCheck", "charset_of"]
