"""PostgreSQL types for the COPY BINARY codec: the registry and the value codecs.

One module per type family, as psycopg splits its ``types``: :mod:`.numeric`,
:mod:`.text` (text family, "char", bytea, raw), :mod:`.json`, :mod:`.datetime`,
:mod:`.network`, :mod:`.misc` (uuid, bit, tid), :mod:`.array`, :mod:`.range` (and
multiranges), :mod:`.composite`, :mod:`.hstore`; :mod:`.core` holds what they share
(codec ids, message texts, :class:`TypeInfo`), :mod:`.builtins` the table of
built-in types, :mod:`.registry` the :class:`TypeRegistry` and :func:`resolve`.

A column's type is resolved once per stream into a :class:`TypeInfo` (from an OID,
a name such as ``"int4"``, ``"integer"``, ``"numeric(12,2)"``, ``"varchar(20)[]"``,
``"_int4"``, ``"timestamp with time zone"``, or a TypeInfo).  A TypeInfo carries
everything a codec needs: OID, name, typmod, kind, the element type of arrays and
ranges, a small integer ``codec`` id the C core switches on for its hot types, the
fixed wire size if any, and the pure-Python ``decode(bytes) -> value`` and
``encode(value) -> bytes`` functions (which the C core calls for the other types).
Types without a codec pass through as raw ``bytes``.

Enums, composites, domains, hstore and user ranges have OIDs that differ per
database: register them on a :class:`TypeRegistry` (the schema layer knows them) and
resolve against it.  The module-level :func:`resolve` knows the built-in types only;
there is no global mutable state.

Python representations (decode gives these; encode accepts them back):

==========================  ==========================================================
bool                        bool
int2, int4, int8            int
oid, xid, cid, reg*         int (unsigned 32 bit); xid8, pg_lsn: int (unsigned 64)
float4, float8              float (NaN, infinities and -0.0 kept)
numeric                     decimal.Decimal with exponent -dscale (1.10 stays 1.10);
                            Decimal('NaN'), Decimal('Infinity'), Decimal('-Infinity')
text, varchar, bpchar,      str, in the registry's client encoding (UTF8 unless
name, enum, json, xml       ``TypeRegistry(encoding="LATIN1")`` etc.)
"char"                      str of length 0 or 1 (the byte as Latin-1; '' for \\0)
jsonb, jsonpath             str, the exact text (version byte 1 on the wire)
bytea                       bytes
date                        datetime.date, else values.PgDate (BC, > 9999, infinity);
                            clamped() gives date.min/max instead (lossy, opt-in)
timestamp                   naive datetime.datetime, else values.PgTimestamp
timestamptz                 aware datetime.datetime in UTC, else values.PgTimestamp
                            (naive datetimes are refused unless naive_as_utc())
time                        datetime.time, else values.PgTime (24:00:00)
timetz                      datetime.time with a fixed-offset tzinfo, else PgTime
interval                    datetime.timedelta when months == days == 0, else
                            values.PgInterval (months, days, micros apart)
uuid                        uuid.UUID
inet / cidr                 ipaddress.IPv4Interface/IPv6Interface / IPv4Network/...
macaddr, macaddr8           str, lower-case, colon-separated
bit, varbit                 str of '0' and '1'
money                       int, in minor units (the scale depends on lc_monetary)
tid                         tuple (block, offset)
arrays                      nested lists, None for NULL, [] for empty; values.PgArray
                            when a lower bound is not 1 or the has-nulls flag is set
                            without NULLs; an array of an unknown type: bytes
ranges / multiranges        values.PgRange / values.PgMultirange
composite, record           values.PgRecord (a tuple remembering its field OIDs)
hstore (registered)         dict[str, str | None]
anything else               bytes (raw passthrough)
==========================  ==========================================================

Error texts are in the MESSAGES block of :mod:`.core`; the C core imports the ones
of its hot types.
A decode function raises ValueError(reason); the decoder reports it as
``<field prefix>: invalid <type name> value: <reason>``.  An encode function raises
TypeError (wrong Python type) or EncodeError/ValueError (bad value) with the whole
text, and the encoder prefixes the field and row.
"""
from __future__ import annotations

from ..encodings import PG_ENCODINGS, python_encoding
from .core import CODECS, TypeInfo
from .registry import BUILTINS, TypeRegistry, clamped, naive_as_utc, resolve

__all__ = ["TypeInfo", "TypeRegistry", "resolve", "naive_as_utc", "clamped", "python_encoding",
           "BUILTINS", "CODECS", "PG_ENCODINGS"]
