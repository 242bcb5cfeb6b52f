"""The text family (text, varchar, bpchar, name, json, xml, enums), "char", bytea, and
the raw passthrough of types without a codec."""
from __future__ import annotations

import functools

from ...errors import EncodeError
from .core import EE_CHAR, EE_NUL, _size, _type_error

__all__ = ["decode_text", "encode_text", "decode_char", "encode_char", "decode_bytea",
           "encode_bytea"]

# --- text family -----------------------------------------------------------

#: str(b, encoding="utf-8"): the decoder of the whole text family; a C-level call.
decode_text = functools.partial(str, encoding="utf-8")


def _make_text(name: str, encoding: str = "utf-8", errors: str = "strict"):
    def encode(v) -> bytes:
        if type(v) is not str and not isinstance(v, str):
            raise _type_error("str", name, v)
        if "\x00" in v:
            raise EncodeError(EE_NUL.format(name=name))
        return v.encode(encoding, errors)
    return encode


encode_text = _make_text("text")


def decode_char(b: bytes) -> str:
    _size(b, 1)
    return "" if b == b"\x00" else chr(b[0])


def encode_char(v) -> bytes:
    if not isinstance(v, str):
        raise _type_error("str", '"char"', v)
    if v == "":
        return b"\x00"
    if len(v) == 1 and 0 < ord(v) < 256:
        return bytes((ord(v),))
    raise EncodeError(EE_CHAR.format(value=v))


# --- bytea ----------------------------------------------------------------

decode_bytea = bytes


def encode_bytea(v) -> bytes:
    if type(v) is bytes:
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    raise _type_error("bytes", "bytea", v)


def _make_raw(name: str):
    def encode(v) -> bytes:
        if type(v) is bytes:
            return v
        if isinstance(v, (bytes, bytearray, memoryview)):
            return bytes(v)
        raise _type_error("bytes", name, v)
    return encode
