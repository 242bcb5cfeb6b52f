"""TypeRegistry: types by OID and name, the built-ins plus what a database adds;
:func:`resolve` and its opt-in variants :func:`naive_as_utc` and :func:`clamped`."""
from __future__ import annotations

import datetime as _dt
import functools
import re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ...errors import EncodeError
from ..encodings import python_encoding
from ..values import PgDate, PgTimestamp
from .array import _make_array
from .builtins import _BUILTIN_RANGES, _builtin_types
from .composite import _make_composite
from .core import (CODEC_ARRAY, CODEC_DATE, CODEC_JSONB, CODEC_PY, CODEC_RAW, CODEC_TEXT,
                   CODEC_TIMESTAMP, CODEC_TIMESTAMPTZ, EE_LABEL, TypeInfo, _tname)
from .datetime import encode_timestamptz, encode_timestamptz_naive_utc
from .hstore import _make_hstore
from .json import _make_versioned, _make_versioned_decoder
from .range import _make_multirange, _make_range
from .text import _make_raw, _make_text

__all__ = ["TypeRegistry", "BUILTINS", "resolve", "naive_as_utc", "clamped"]

# SQL spellings -> our names (format_type() output included)
_ALIASES = {
    "integer": "int4", "int": "int4", "smallint": "int2", "bigint": "int8",
    "serial": "int4", "serial4": "int4", "bigserial": "int8", "serial8": "int8",
    "smallserial": "int2", "serial2": "int2",
    "real": "float4", "double precision": "float8", "float": "float8",
    "boolean": "bool", "decimal": "numeric",
    "character varying": "varchar", "character": "bpchar", "char": "bpchar",
    "timestamp without time zone": "timestamp", "timestamp with time zone": "timestamptz",
    "time without time zone": "time", "time with time zone": "timetz",
    "bit varying": "varbit", "char_": '"char"', "record": "record",
}
_TYPMOD = re.compile(r"\(([^()]*)\)")


def _typmod_for(name: str, args: List[int]) -> int:
    if not args:
        return -1
    if name == "numeric":
        prec = args[0]
        scale = args[1] if len(args) > 1 else 0
        return ((prec << 16) | (scale & 0xFFFF)) + 4
    if name in ("varchar", "bpchar"):
        return args[0] + 4
    # bit, varbit, timestamp(p), time(p), ... store the number itself
    return args[0]


class TypeRegistry:
    """Types by OID and name: the built-ins plus what a database adds.

    ``TypeRegistry()`` starts with the built-in types; ``register_enum``,
    ``register_composite``, ``register_domain``, ``register_range`` and
    ``register_hstore`` add the types whose OIDs are per database.  ``resolve``
    turns a spec into a TypeInfo.  ``encoding``: the PostgreSQL client encoding of
    the text the streams carry (default UTF8; see PG_ENCODINGS; SQL_ASCII keeps any
    byte through surrogateescape).
    """

    def __init__(self, parent: Any = "builtins", *, encoding: Optional[str] = None):
        if parent == "builtins":
            # None only while the built-in registry itself is being made
            parent = globals().get("BUILTINS")
        self._parent = parent
        self.encoding = "UTF8" if encoding is None else encoding
        self._codec = python_encoding(self.encoding)
        self._by_oid: Dict[int, TypeInfo] = {}
        self._by_name: Dict[str, TypeInfo] = {}
        self._array_of: Dict[int, int] = {}    # array oid -> element oid
        self._arrays: Dict[Tuple[int, str, int], TypeInfo] = {}
        # Anonymous records look their fields up by OID in *this* registry.
        dec, enc = _make_composite(self, "record", ())
        self.register(TypeInfo(2249, "record", "composite", CODEC_PY, dec, enc,
                               array_oid=2287))
        if self._codec != ("utf-8", "strict") and parent is not None:
            self._install_encoding()

    def _install_encoding(self) -> None:
        """Shadow the text-family built-ins with codecs for this client encoding.

        Their codec id becomes CODEC_PY, so the C core calls these functions too.
        """
        enc, errors = self._codec
        dec = functools.partial(str, encoding=enc, errors=errors)
        for ti in _builtin_types():
            if ti.codec == CODEC_TEXT:
                self.register(TypeInfo(ti.oid, ti.name, ti.kind, CODEC_PY, dec,
                                       _make_text(ti.name, enc, errors),
                                       array_oid=ti.array_oid))
            elif ti.codec == CODEC_JSONB:
                self.register(TypeInfo(ti.oid, ti.name, ti.kind, CODEC_PY,
                                       _make_versioned_decoder(enc, errors),
                                       _make_versioned(ti.name, enc, errors),
                                       array_oid=ti.array_oid))

    # -- lookups ------------------------------------------------------------
    def lookup_oid(self, oid: int) -> Optional[TypeInfo]:
        """The TypeInfo for an OID (arrays included), or None when unknown."""
        ti = self._by_oid.get(oid)
        if ti is not None:
            return ti
        elem_oid = self._array_of.get(oid)
        if elem_oid is not None:
            elem = self.lookup_oid(elem_oid)
            if elem is not None:
                return self.array_of(elem)
        if self._parent is not None:
            return self._parent.lookup_oid(oid)
        return None

    def lookup_name(self, name: str) -> Optional[TypeInfo]:
        ti = self._by_name.get(name)
        if ti is None and self._parent is not None:
            ti = self._parent.lookup_name(name)
        return ti

    def array_of(self, elem: TypeInfo) -> TypeInfo:
        """The array type whose elements are ``elem``."""
        key = (elem.oid, elem.name, elem.typmod)
        ti = self._arrays.get(key)
        if ti is None and not elem.oid:
            # Element type unknown (no OID): pass the whole array through raw, so that
            # the element OID on the wire survives a round trip.
            name = elem.name + "[]"
            ti = TypeInfo(0, name, "raw", CODEC_RAW, bytes, _make_raw(name), typmod=elem.typmod)
            self._arrays[key] = ti
        if ti is None:
            name = elem.name + "[]"
            dec, enc = _make_array(elem, name)
            ti = TypeInfo(elem.array_oid, name, "array", CODEC_ARRAY, dec, enc,
                          typmod=elem.typmod, element=elem)
            self._arrays[key] = ti
        return ti

    # -- registration -------------------------------------------------------
    def register(self, ti: TypeInfo) -> TypeInfo:
        """Add a TypeInfo (known by its OID, if not 0, and by its name)."""
        if ti.oid:
            self._by_oid[ti.oid] = ti
            if ti.array_oid:
                self._array_of[ti.array_oid] = ti.oid
        self._by_name[ti.name] = ti
        return ti

    def register_enum(self, name: str, oid: int, array_oid: int = 0,
                      labels: Optional[Iterable[str]] = None) -> TypeInfo:
        """An enum: values are its labels as str; with ``labels``, others are refused."""
        text = _make_text(name, *self._codec)
        if labels is not None:
            labels = tuple(labels)
            allowed = frozenset(labels)

            def encode(v) -> bytes:
                b = text(v)
                if v not in allowed:
                    raise EncodeError(EE_LABEL.format(value=v, name=name))
                return b
            codec = CODEC_PY
        else:
            encode = text
            codec = CODEC_TEXT
        if self._codec != ("utf-8", "strict"):
            codec = CODEC_PY
        dec = functools.partial(str, encoding=self._codec[0], errors=self._codec[1])
        return self.register(TypeInfo(oid, name, "enum", codec, dec, encode,
                                      array_oid=array_oid, labels=labels))

    def register_composite(self, name: str, oid: int,
                           fields: Sequence[Tuple[str, Any]],
                           array_oid: int = 0) -> TypeInfo:
        """A composite type: ``fields`` are (name, type spec) in column order."""
        resolved = tuple((fname, self.resolve(spec)) for fname, spec in fields)
        dec, enc = _make_composite(self, name, resolved)
        return self.register(TypeInfo(oid, name, "composite", CODEC_PY, dec, enc,
                                      array_oid=array_oid, fields=resolved))

    def register_domain(self, name: str, oid: int, base: Any,
                        array_oid: int = 0) -> TypeInfo:
        """A domain: the wire form of its base type, its own OID and name."""
        b = self.resolve(base)
        return self.register(TypeInfo(oid, name, "domain", b.codec, b.decode, b.encode,
                                      typmod=b.typmod, element=b.element, size=b.size,
                                      struct=b.struct, array_oid=array_oid))

    def register_range(self, name: str, oid: int, subtype: Any, array_oid: int = 0,
                       multirange: Optional[str] = None, multirange_oid: int = 0,
                       multirange_array_oid: int = 0) -> TypeInfo:
        """A range type (and optionally its multirange type)."""
        sub = self.resolve(subtype)
        dec, enc = _make_range(sub, name)
        rng = self.register(TypeInfo(oid, name, "range", CODEC_PY, dec, enc,
                                     element=sub, array_oid=array_oid))
        if multirange:
            mdec, menc = _make_multirange(rng, multirange)
            self.register(TypeInfo(multirange_oid, multirange, "multirange", CODEC_PY,
                                   mdec, menc, element=rng, array_oid=multirange_array_oid))
        return rng

    def register_hstore(self, oid: int, array_oid: int = 0, name: str = "hstore") -> TypeInfo:
        """The hstore extension type (its OID differs per database)."""
        dec, enc = _make_hstore(name, *self._codec)
        return self.register(TypeInfo(oid, name, "hstore", CODEC_PY, dec, enc,
                                      array_oid=array_oid))

    # -- resolution ---------------------------------------------------------
    def resolve(self, spec: Union[int, str, TypeInfo]) -> TypeInfo:
        """A TypeInfo for an OID, a type name (SQL spellings, typmods, ``[]``) or a
        TypeInfo; unknown types resolve to raw passthrough."""
        if isinstance(spec, TypeInfo):
            return spec
        if isinstance(spec, bool) or not isinstance(spec, (int, str)):
            raise TypeError(f"a type is an OID, a name or a TypeInfo, not {_tname(spec)}")
        if isinstance(spec, int):
            ti = self.lookup_oid(spec)
            if ti is None:
                ti = TypeInfo(spec, f"type {spec}", "raw", CODEC_RAW, bytes,
                              _make_raw(f"type {spec}"))
            return ti
        return self._resolve_name(spec)

    def _resolve_name(self, spec: str) -> TypeInfo:
        s = " ".join(spec.strip().split())
        ndim = 0
        while s.endswith("[]"):
            ndim += 1
            s = s[:-2].rstrip()
        m = re.search(r"\s+array(\[\d*\])?$", s, re.IGNORECASE)
        if m:
            ndim += 1
            s = s[:m.start()]
        args: List[int] = []
        m = _TYPMOD.search(s)
        if m:
            try:
                args = [int(a) for a in m.group(1).split(",")]
            except ValueError:
                raise ValueError(f"cannot parse the type modifier in {spec!r}") from None
            s = (s[:m.start()] + s[m.end():]).strip()
            s = " ".join(s.split())
        ti = self.lookup_name(s)
        if ti is None:
            low = s.lower()
            if low.startswith("pg_catalog."):
                low = low[len("pg_catalog."):]
            if low.startswith('"') and low.endswith('"') and low != '"char"':
                low = low[1:-1]
            low = _ALIASES.get(low, low)
            if low.startswith("interval "):
                # "interval day to second(3)": the fields restrict input, not the wire
                low, args = "interval", []
            ti = self.lookup_name(low)
            if ti is None and low.startswith("_") and ndim == 0:
                elem = self.lookup_name(low[1:])
                if elem is not None:
                    ti, ndim = elem, 1
            if ti is None:
                ti = TypeInfo(0, s, "raw", CODEC_RAW, bytes, _make_raw(s))
        if args:
            ti = ti.with_typmod(_typmod_for(ti.name, args))
        if ndim:
            ti = self.array_of(ti)
        return ti


def _make_builtins() -> TypeRegistry:
    reg = TypeRegistry(None)
    for ti in _builtin_types():
        reg.register(ti)
    for name, oid, sub, aoid, mname, moid, maoid in _BUILTIN_RANGES:
        reg.register_range(name, oid, sub, aoid, mname, moid, maoid)
    # int2vector and oidvector travel as arrays (with lower bound 0)
    for name, oid, elem, aoid in (("int2vector", 22, "int2", 1006),
                                  ("oidvector", 30, "oid", 1013)):
        e = reg.lookup_name(elem)
        dec, enc = _make_array(e, name)
        reg.register(TypeInfo(oid, name, "array", CODEC_ARRAY, dec, enc, element=e,
                              array_oid=aoid))
    return reg


#: The built-in types.  Register database types on your own ``TypeRegistry()``,
#: which starts from (and falls back to) these.
BUILTINS = _make_builtins()


def naive_as_utc(spec: Union[int, str, TypeInfo],
                 registry: Optional[TypeRegistry] = None) -> TypeInfo:
    """timestamptz (or an array or range of it) whose encoder takes naive datetimes
    as UTC instead of refusing them: the explicit opt-in.  Decoding is unchanged."""
    ti = resolve(spec, registry)
    if ti.codec == CODEC_TIMESTAMPTZ or ti.encode is encode_timestamptz:
        return TypeInfo(**{**ti.__dict__, "codec": CODEC_PY,
                           "encode": encode_timestamptz_naive_utc})
    if ti.kind == "array" and ti.element is not None:
        elem = naive_as_utc(ti.element)
        dec, enc = _make_array(elem, ti.name)
        return TypeInfo(**{**ti.__dict__, "element": elem, "decode": dec, "encode": enc})
    if ti.kind == "range" and ti.element is not None:
        elem = naive_as_utc(ti.element)
        dec, enc = _make_range(elem, ti.name)
        return TypeInfo(**{**ti.__dict__, "element": elem, "decode": dec, "encode": enc,
                           "codec": CODEC_PY})
    raise ValueError(f"naive_as_utc applies to timestamptz, not {ti.name}")


def _clamping(decode, lo, hi):
    def clamped(b: bytes):
        v = decode(b)
        if isinstance(v, (PgDate, PgTimestamp)):
            return lo if (v.days if isinstance(v, PgDate) else v.micros) < 0 else hi
        return v
    return clamped


_CLAMP = {
    "date": (_dt.date.min, _dt.date.max),
    "timestamp": (_dt.datetime.min, _dt.datetime.max),
    "timestamptz": (_dt.datetime.min.replace(tzinfo=_dt.timezone.utc),
                    _dt.datetime.max.replace(tzinfo=_dt.timezone.utc)),
}


def clamped(spec: Union[int, str, TypeInfo],
            registry: Optional[TypeRegistry] = None) -> TypeInfo:
    """date, timestamp or timestamptz (or an array of one) that decodes values outside
    Python's range, infinities included, to ``date.min``/``max`` or
    ``datetime.min``/``max`` instead of stand-ins.  Lossy, so only on request: such a
    value no longer re-encodes to its bytes."""
    ti = resolve(spec, registry)
    base = {CODEC_DATE: "date", CODEC_TIMESTAMP: "timestamp",
            CODEC_TIMESTAMPTZ: "timestamptz"}.get(ti.codec)
    if base is None and ti.element is not None and ti.kind == "array":
        elem = clamped(ti.element)
        dec, enc = _make_array(elem, ti.name)
        return TypeInfo(**{**ti.__dict__, "element": elem, "decode": dec, "encode": enc,
                           "codec": CODEC_PY})
    if base is None:
        raise ValueError(f"clamped applies to date, timestamp and timestamptz, not {ti.name}")
    lo, hi = _CLAMP[base]
    return TypeInfo(**{**ti.__dict__, "codec": CODEC_PY,
                       "decode": _clamping(ti.decode, lo, hi)})


def resolve(spec: Union[int, str, TypeInfo],
            registry: Optional[TypeRegistry] = None) -> TypeInfo:
    """Resolve a type spec against ``registry`` (default: the built-in types)."""
    return (registry or BUILTINS).resolve(spec)
