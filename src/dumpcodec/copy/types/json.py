"""jsonb and jsonpath: a version byte (1), then the text."""
from __future__ import annotations

from .core import ER_JSONB_VERSION, ER_MIN_SIZE
from .text import _make_text

__all__ = ["decode_jsonb", "decode_jsonpath", "encode_jsonb"]

def _decode_versioned(b: bytes) -> str:
    if not b:
        raise ValueError(ER_MIN_SIZE.format(n=0, size=1))
    if b[0] != 1:
        raise ValueError(ER_JSONB_VERSION.format(v=b[0]))
    return str(b[1:], "utf-8")


decode_jsonb = _decode_versioned
decode_jsonpath = _decode_versioned


def _make_versioned_decoder(encoding: str, errors: str):
    def decode(b: bytes) -> str:
        if not b:
            raise ValueError(ER_MIN_SIZE.format(n=0, size=1))
        if b[0] != 1:
            raise ValueError(ER_JSONB_VERSION.format(v=b[0]))
        return str(b[1:], encoding, errors)
    return decode


def _make_versioned(name: str, encoding: str = "utf-8", errors: str = "strict"):
    text = _make_text(name, encoding, errors)

    def encode(v) -> bytes:
        return b"\x01" + text(v)
    return encode


encode_jsonb = _make_versioned("jsonb")
