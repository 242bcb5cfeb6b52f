"""PostgreSQL client encodings -> Python codecs: the one map the codec uses.

Strict: an encoding without a Python codec raises ValueError rather than being read as
something else.  Used by :class:`dumpcodec.copy.types.TypeRegistry` (text values in
COPY BINARY) and :func:`dumpcodec.copy.text.text_rows` (text COPY).
"""
from __future__ import annotations

from typing import Tuple

__all__ = ["PG_ENCODINGS", "python_encoding"]

# PostgreSQL client encodings -> (Python codec, error handler).  SQL_ASCII means
# "bytes, unchecked": surrogateescape keeps any byte and gives it back on encode.
PG_ENCODINGS = {
    "UTF8": ("utf-8", "strict"), "SQL_ASCII": ("utf-8", "surrogateescape"),
    "LATIN1": ("iso8859-1", "strict"), "LATIN2": ("iso8859-2", "strict"),
    "LATIN3": ("iso8859-3", "strict"), "LATIN4": ("iso8859-4", "strict"),
    "LATIN5": ("iso8859-9", "strict"), "LATIN6": ("iso8859-10", "strict"),
    "LATIN7": ("iso8859-13", "strict"), "LATIN8": ("iso8859-14", "strict"),
    "LATIN9": ("iso8859-15", "strict"), "LATIN10": ("iso8859-16", "strict"),
    "ISO_8859_5": ("iso8859-5", "strict"), "ISO_8859_6": ("iso8859-6", "strict"),
    "ISO_8859_7": ("iso8859-7", "strict"), "ISO_8859_8": ("iso8859-8", "strict"),
    "WIN866": ("cp866", "strict"), "WIN874": ("cp874", "strict"),
    "WIN1250": ("cp1250", "strict"), "WIN1251": ("cp1251", "strict"),
    "WIN1252": ("cp1252", "strict"), "WIN1253": ("cp1253", "strict"),
    "WIN1254": ("cp1254", "strict"), "WIN1255": ("cp1255", "strict"),
    "WIN1256": ("cp1256", "strict"), "WIN1257": ("cp1257", "strict"),
    "WIN1258": ("cp1258", "strict"), "KOI8R": ("koi8-r", "strict"),
    "KOI8U": ("koi8-u", "strict"), "EUC_JP": ("euc_jp", "strict"),
    "EUC_CN": ("gb2312", "strict"), "EUC_KR": ("euc_kr", "strict"),
    "SJIS": ("shift_jis", "strict"), "BIG5": ("big5", "strict"), "GBK": ("gbk", "strict"),
    "GB18030": ("gb18030", "strict"), "UHC": ("cp949", "strict"),
    "JOHAB": ("johab", "strict"), "EUC_JIS_2004": ("euc_jis_2004", "strict"),
    "SHIFT_JIS_2004": ("shift_jis_2004", "strict"),
}


def python_encoding(pg_encoding: str) -> Tuple[str, str]:
    """(Python codec, error handler) for a PostgreSQL client encoding name."""
    key = pg_encoding.upper().replace("-", "_")
    key = {"UTF_8": "UTF8", "UNICODE": "UTF8"}.get(key, key)
    try:
        return PG_ENCODINGS[key]
    except KeyError:
        raise ValueError(f"no Python codec for the client encoding {pg_encoding!r}") from None
