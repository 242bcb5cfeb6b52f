# Included by _fastcopy.pyx (Cython ``include``: one module, cut into files so that
# none is too long to read); the names it uses come from there and from the files
# included before it.
#
# Per-column decoding: the hot types in C, the others through the twin.

# ---------------------------------------------------------------------------
# Per-column codecs.  A column is either one of the hot types handled in C, or
# delegated to the twin's per-type Python function (dumpcodec.copy.types) once per
# value.  The C paths handle only the plain, valid case; anything unusual (a wrong length, a
# value outside Python's range, infinities, NaN, non-default array bounds...) is
# handed to the twin's function, which gives the stand-in object or the error
# message, so both implementations cannot disagree on the rare cases.

from cpython.datetime cimport (import_datetime, date_new, datetime_new,
                               PyDateTime_CheckExact, PyDate_CheckExact,
                               PyDateTime_GET_YEAR, PyDateTime_GET_MONTH, PyDateTime_GET_DAY,
                               PyDateTime_DATE_GET_HOUR, PyDateTime_DATE_GET_MINUTE,
                               PyDateTime_DATE_GET_SECOND, PyDateTime_DATE_GET_MICROSECOND,
                               datetime_tzinfo)
from cpython.long cimport PyLong_FromLong, PyLong_FromLongLong, PyLong_FromUnsignedLong
from cpython.float cimport PyFloat_FromDouble
from cpython.unicode cimport PyUnicode_DecodeUTF8
import decimal as _decimal_mod
import uuid as _uuid_mod

import_datetime()

cdef extern from *:
    """
    /* PyUnicode_DecodeUTF8 returning a new reference or NULL with the error set */
    static inline PyObject *dc_decode_utf8(const char *s, Py_ssize_t n) {
        return PyUnicode_DecodeUTF8(s, n, NULL);
    }
    """
    PyObject *dc_decode_utf8(const char *s, Py_ssize_t n)

cdef extern from "Python.h":
    object PyList_New(Py_ssize_t n)
    void PyList_SET_ITEM(object l, Py_ssize_t i, object o)
    int PyErr_ExceptionMatches(PyObject *exc)
    void PyErr_Clear()
    object _PyLong_FromByteArray(const unsigned char *b, size_t n, int little_endian, int is_signed)
    const char *PyUnicode_AsUTF8AndSize(object u, Py_ssize_t *size) except NULL
    bint PyLong_CheckExact(object o)
    bint PyFloat_CheckExact(object o)
    bint PyUnicode_CheckExact(object o)
    bint PyBytes_CheckExact(object o)
    long long PyLong_AsLongLongAndOverflow(object o, int *overflow) except? -1
    double PyFloat_AS_DOUBLE(object o)
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void *PyUnicode_DATA(object o)
    PyObject *PyObject_CallOneArg(PyObject *f, PyObject *a) except NULL
    ctypedef struct PyTypeObject:
        int (*tp_descr_set)(PyObject *, PyObject *, PyObject *) except -1
        PyObject *(*tp_alloc)(PyTypeObject *, Py_ssize_t) except NULL
    PyTypeObject *Py_TYPE(PyObject *o)

cdef object _Decimal = _decimal_mod.Decimal
cdef object _UUID = _uuid_mod.UUID
cdef object _uuid_int_slot = _uuid_mod.UUID.__dict__["int"]
cdef object _uuid_safe_slot = _uuid_mod.UUID.__dict__["is_safe"]
cdef object _uuid_unknown = _uuid_mod.SafeUUID.unknown

# days since 2000-01-01 of 0001-01-01 and 9999-12-31 (Python's date range)
DEF MIN_DAYS = -730119
DEF MAX_DAYS = 2921939
DEF USECS_PER_DAY = 86400000000

cdef enum:
    # Our own numbering; setup_col maps types.core's CODEC_* ids onto these by name.
    K_PY = 0        # the twin's Python decode/encode
    K_BOOL = 1
    K_INT2 = 2
    K_INT4 = 3
    K_INT8 = 4
    K_OID = 5
    K_FLOAT4 = 6
    K_FLOAT8 = 7
    K_TEXT = 8      # text, varchar, bpchar, name, json, xml (UTF-8)
    K_BYTEA = 9
    K_DATE = 10
    K_TS = 11
    K_TSTZ = 12
    K_NUMERIC = 13
    K_UUID = 14
    K_JSONB = 15
    K_ARRAY = 16


cdef struct _ColCodec:
    int kind
    int32_t size            # fixed wire size, -1 if none (checked before the twin's decode)
    PyObject *name          # the type's name, for messages
    int elem_kind           # for arrays
    uint32_t elem_oid       # for arrays
    int enc_text            # text-like columns encodable in C (no typmod, no limits)
    PyObject *pydec         # borrowed: the owner keeps its TypeInfo list alive
    PyObject *pyenc
    PyObject *elem_pydec
    PyObject *pyenc_elem
    PyObject *tz            # tzinfo for timestamptz (the twin's UTC object)


cdef inline int days_to_ymd(int64_t days, int *y, int *m, int *d) noexcept nogil:
    """Proleptic Gregorian civil date for days since 2000-01-01 (Hinnant's algorithm)."""
    cdef int64_t z = days + 730425
    cdef int64_t era = (z if z >= 0 else z - 146096) // 146097
    cdef int64_t doe = z - era * 146097
    cdef int64_t yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef int64_t yy = yoe + era * 400
    cdef int64_t doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef int64_t mp = (5 * doy + 2) // 153
    d[0] = <int>(doy - (153 * mp + 2) // 5 + 1)
    m[0] = <int>(mp + 3 if mp < 10 else mp - 9)
    y[0] = <int>(yy + 1 if m[0] <= 2 else yy)
    return 0


cdef inline int64_t ymd_to_days(int64_t y, int64_t m, int64_t d) noexcept nogil:
    """Days since 2000-01-01 of a proleptic Gregorian date (inverse of the above)."""
    if m <= 2:
        y -= 1
    cdef int64_t era = (y if y >= 0 else y - 399) // 400
    cdef int64_t yoe = y - era * 400
    cdef int64_t mp = m - 3 if m > 2 else m + 9
    cdef int64_t doy = (153 * mp + 2) // 5 + d - 1
    cdef int64_t doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 730425


cdef int raise_current() except -1:
    """Propagate the exception that is set (a C call returned NULL)."""
    raise_pending()
    return -1


cdef extern from *:
    """
    static int dc_raise_pending(void) { return PyErr_Occurred() ? -1 : 0; }
    """
    int raise_pending "dc_raise_pending"() except -1


cdef inline object _py_decode(PyObject *f, const unsigned char *p, int32_t ln):
    return (<object>f)(PyBytes_FromStringAndSize(<const char *>p, ln))


cdef object _py_decode_col(_ColCodec *c, const unsigned char *p, int32_t ln):
    """The twin's path for one value: size check, then the type's decode function."""
    if c.size >= 0 and ln != c.size:
        raise ValueError(_ER_SIZE.format(n=ln, size=c.size))
    return (<object>c.pydec)(PyBytes_FromStringAndSize(<const char *>p, ln))


cdef object make_uuid(const unsigned char *p):
    """A uuid.UUID without running UUID.__init__: allocate, then fill its two slots.

    The object is untracked by the collector: its slots hold an int and an enum
    member, so it cannot be part of a reference cycle (and millions of live UUIDs
    would otherwise make every collection walk them).
    """
    cdef object iv = _PyLong_FromByteArray(p, 16, 0, 0)
    cdef PyObject *u = (<PyTypeObject *>_UUID).tp_alloc(<PyTypeObject *>_UUID, 0)
    cdef object res = <object>u
    Py_DECREF(u)   # res holds the reference tp_alloc gave
    Py_TYPE(<PyObject *>_uuid_int_slot).tp_descr_set(<PyObject *>_uuid_int_slot, u,
                                                     <PyObject *>iv)
    Py_TYPE(<PyObject *>_uuid_safe_slot).tp_descr_set(<PyObject *>_uuid_safe_slot, u,
                                                      <PyObject *>_uuid_unknown)
    if PyObject_GC_IsTracked(u):
        PyObject_GC_UnTrack(u)
    return res


cdef object decode_numeric(_ColCodec *c, const unsigned char *p, int32_t ln):
    """numeric -> Decimal with exactly dscale fractional digits, via a C-built string."""
    cdef int ndigits, weight, sign, dscale, i, j, k, g, nint, nfrac, pos, total
    cdef char buf[256]
    cdef char *s
    cdef int dig
    cdef object r
    if ln < 8:
        return _py_decode_col(c, p, ln)
    ndigits = dc_u16(p)
    weight = <int16_t>dc_u16(p + 2)
    sign = dc_u16(p + 4)
    dscale = dc_u16(p + 6)
    if ln != 8 + 2 * ndigits or (sign != 0 and sign != 0x4000) or dscale > 0x3FFF \
            or ndigits == 0:
        return _py_decode_col(c, p, ln)
    # integer digits: groups 0..weight; fraction: dscale digits
    nint = (weight + 1) * 4 if weight >= 0 else 0
    total = 1 + (nint if nint > 0 else 1) + 1 + dscale
    if total > <int>sizeof(buf) - 8:
        return _py_decode_col(c, p, ln)
    for i in range(ndigits):
        if dc_u16(p + 8 + 2 * i) >= 10000:
            return _py_decode_col(c, p, ln)
    # digits beyond dscale that are not zero: let the twin decide what that means
    s = buf
    pos = 0
    if sign == 0x4000:
        s[pos] = 45  # '-'
        pos += 1
    if weight < 0:
        s[pos] = 48
        pos += 1
    else:
        for g in range(weight + 1):
            dig = dc_u16(p + 8 + 2 * g) if g < ndigits else 0
            s[pos] = 48 + dig // 1000
            s[pos + 1] = 48 + dig // 100 % 10
            s[pos + 2] = 48 + dig // 10 % 10
            s[pos + 3] = 48 + dig % 10
            pos += 4
    # fractional digits: group index weight+1 ..., each 4 digits
    if dscale > 0:
        s[pos] = 46  # '.'
        pos += 1
        k = 0
        g = weight + 1
        while k < dscale:
            if g >= 0 and g < ndigits:
                dig = dc_u16(p + 8 + 2 * g)
            else:
                dig = 0
            j = 0
            while j < 4 and k < dscale:
                if j == 0:
                    s[pos] = 48 + dig // 1000
                elif j == 1:
                    s[pos] = 48 + dig // 100 % 10
                elif j == 2:
                    s[pos] = 48 + dig // 10 % 10
                else:
                    s[pos] = 48 + dig % 10
                pos += 1
                j += 1
                k += 1
            g += 1
    # non-zero digits past dscale would be cut off here: hand those to the twin
    g = weight + 1 + (dscale + 3) // 4
    if g < 0:
        g = 0
    while g < ndigits:
        if dc_u16(p + 8 + 2 * g) != 0:
            return _py_decode_col(c, p, ln)
        g += 1
    if dscale % 4 and weight + 1 + dscale // 4 < ndigits and weight + 1 + dscale // 4 >= 0:
        dig = dc_u16(p + 8 + 2 * (weight + 1 + dscale // 4))
        j = dscale % 4
        if (j == 1 and dig % 1000) or (j == 2 and dig % 100) or (j == 3 and dig % 10):
            return _py_decode_col(c, p, ln)
    if sign == 0x4000:
        # "-0.00" would keep a sign the twin drops: let it decide
        for i in range(1, pos):
            if s[i] > 48 and s[i] <= 57:
                break
        else:
            return _py_decode_col(c, p, ln)
    r = PyUnicode_New(pos, 127)
    memcpy(PyUnicode_DATA(r), s, pos)
    return _Decimal(r)


cdef object decode_value(_ColCodec *c, const unsigned char *p, int32_t ln):
    cdef int kind = c.kind
    cdef int64_t v64, days, us
    cdef uint32_t u32
    cdef uint64_t u64
    cdef float f4
    cdef double f8
    cdef int y, m, d, secs
    cdef PyObject *r
    cdef object res
    if kind == K_INT4:
        if ln == 4:
            return PyLong_FromLong(<int32_t>dc_u32(p))
    elif kind == K_INT8:
        if ln == 8:
            return PyLong_FromLongLong(<int64_t>dc_u64(p))
    elif kind == K_TEXT:
        r = dc_decode_utf8(<const char *>p, ln)
        if r != NULL:
            res = <object>r
            Py_DECREF(r)
            return res
        if not PyErr_ExceptionMatches(<PyObject *>UnicodeDecodeError):
            raise_current()
        PyErr_Clear()
    elif kind == K_FLOAT8:
        if ln == 8:
            u64 = dc_u64(p)
            memcpy(&f8, &u64, 8)
            return PyFloat_FromDouble(f8)
    elif kind == K_BOOL:
        if ln == 1:
            return True if p[0] else False
    elif kind == K_TSTZ or kind == K_TS:
        if ln == 8:
            v64 = <int64_t>dc_u64(p)
            days = v64 // USECS_PER_DAY if v64 >= 0 else -((-(v64 + 1)) // USECS_PER_DAY) - 1
            if MIN_DAYS <= days <= MAX_DAYS:
                us = v64 - days * USECS_PER_DAY
                days_to_ymd(days, &y, &m, &d)
                secs = <int>(us // 1000000)
                return datetime_new(y, m, d, secs // 3600, secs // 60 % 60, secs % 60,
                                    <int>(us % 1000000),
                                    <object>c.tz if kind == K_TSTZ else None)
    elif kind == K_DATE:
        if ln == 4:
            days = <int32_t>dc_u32(p)
            if MIN_DAYS <= days <= MAX_DAYS:
                days_to_ymd(days, &y, &m, &d)
                return date_new(y, m, d)
    elif kind == K_NUMERIC:
        return decode_numeric(c, p, ln)
    elif kind == K_UUID:
        if ln == 16:
            return make_uuid(p)
    elif kind == K_BYTEA:
        return PyBytes_FromStringAndSize(<const char *>p, ln)
    elif kind == K_INT2:
        if ln == 2:
            return PyLong_FromLong(<int16_t>dc_u16(p))
    elif kind == K_OID:
        if ln == 4:
            return PyLong_FromUnsignedLong(dc_u32(p))
    elif kind == K_FLOAT4:
        if ln == 4:
            u32 = dc_u32(p)
            memcpy(&f4, &u32, 4)
            return PyFloat_FromDouble(<double>f4)
    elif kind == K_JSONB:
        if ln >= 1 and p[0] == 1:
            r = dc_decode_utf8(<const char *>p + 1, ln - 1)
            if r != NULL:
                res = <object>r
                Py_DECREF(r)
                return res
            if not PyErr_ExceptionMatches(<PyObject *>UnicodeDecodeError):
                raise_current()
            PyErr_Clear()
    elif kind == K_ARRAY:
        return decode_array(c, p, ln)
    return _py_decode_col(c, p, ln)


cdef object decode_array(_ColCodec *c, const unsigned char *p, int32_t ln):
    """1-D..6-D arrays of hot element types, lower bounds 1; else the twin."""
    cdef int32_t ndim, hasnull, i, n
    cdef int32_t dims[6]
    cdef int64_t total = 1
    cdef uint32_t eoid
    cdef Py_ssize_t pos
    cdef _ColCodec ec
    cdef object flat, item
    cdef int32_t el
    cdef int ek
    cdef int nulls = 0
    if ln < 12:
        return _py_decode_col(c, p, ln)
    ndim = <int32_t>dc_u32(p)
    hasnull = <int32_t>dc_u32(p + 4)
    eoid = dc_u32(p + 8)
    if ndim < 1 or ndim > 6 or (hasnull != 0 and hasnull != 1) or eoid != c.elem_oid \
            or ln < 12 + 8 * ndim:
        return _py_decode_col(c, p, ln)
    for i in range(ndim):
        dims[i] = <int32_t>dc_u32(p + 12 + 8 * i)
        if dims[i] < 1 or <int32_t>dc_u32(p + 16 + 8 * i) != 1:
            return _py_decode_col(c, p, ln)
        total *= dims[i]
        if total > ln:
            return _py_decode_col(c, p, ln)
    ec.kind = c.elem_kind
    ec.size = -1
    ec.pydec = c.elem_pydec
    ec.tz = c.tz
    ec.elem_pydec = NULL
    ek = c.elem_kind
    pos = 12 + 8 * ndim
    if total * 4 > ln - pos:
        return _py_decode_col(c, p, ln)
    flat = PyList_New(<Py_ssize_t>total)
    try:
        for i in range(<int32_t>total):
            if ln - pos < 4:
                return _py_decode_col(c, p, ln)
            el = <int32_t>dc_u32(p + pos)
            pos += 4
            if el == -1:
                if not hasnull:
                    return _py_decode_col(c, p, ln)
                nulls = 1
                item = None
            elif el < 0 or el > ln - pos:
                return _py_decode_col(c, p, ln)
            elif ek == K_INT4 and el == 4:
                item = PyLong_FromLong(<int32_t>dc_u32(p + pos))
            elif ek == K_INT8 and el == 8:
                item = PyLong_FromLongLong(<int64_t>dc_u64(p + pos))
            else:
                item = decode_value(&ec, p + pos, el)
            Py_INCREF(item)
            PyList_SET_ITEM(flat, i, item)
            if el > 0:
                pos += el
    except (ValueError, _struct_error, OverflowError):
        # an element the twin refuses: its decoder gives the exact message
        return _py_decode_col(c, p, ln)
    if pos != ln or hasnull != nulls:
        # trailing bytes, or a has-nulls flag without NULLs (a stand-in keeps it)
        return _py_decode_col(c, p, ln)
    if ndim == 1:
        return flat
    return _nest(flat, dims, ndim)


cdef list _nest(list flat, int32_t *dims, int ndim):
    """Split a flat list into nested lists, innermost dimension last."""
    cdef int k
    cdef Py_ssize_t size, j, n
    cdef list cur = flat, nxt
    for k in range(ndim - 1, 0, -1):
        size = dims[k]
        n = len(cur) // size
        nxt = [None] * n
        for j in range(n):
            nxt[j] = cur[j * size:(j + 1) * size]
        cur = nxt
    return cur


from dumpcodec.copy.types import core as _tcore
from dumpcodec.copy.types.datetime import decode_timestamptz as _decode_timestamptz

cdef object _ER_SIZE = _tcore.ER_SIZE
cdef object _EV_VALUE = _tcore.EV_VALUE
cdef object _UTC = _decode_timestamptz(b"\x00" * 8).tzinfo

# types.core's codec ids -> our kinds (by name, so a renumbering there cannot break us)
cdef dict _KIND_BY_CODEC = {}
for _name, _kind in (("BOOL", K_BOOL), ("INT2", K_INT2), ("INT4", K_INT4), ("INT8", K_INT8),
                     ("OID", K_OID), ("FLOAT4", K_FLOAT4), ("FLOAT8", K_FLOAT8),
                     ("TEXT", K_TEXT), ("BYTEA", K_BYTEA), ("DATE", K_DATE),
                     ("TIMESTAMP", K_TS), ("TIMESTAMPTZ", K_TSTZ), ("NUMERIC", K_NUMERIC),
                     ("UUID", K_UUID), ("JSONB", K_JSONB), ("ARRAY", K_ARRAY)):
    if hasattr(_tcore, "CODEC_" + _name):
        _KIND_BY_CODEC[getattr(_tcore, "CODEC_" + _name)] = _kind


cdef int setup_col(_ColCodec *c, object ti) except -1:
    """Fill a column's codec from its TypeInfo (the owner keeps ti alive)."""
    c.kind = _KIND_BY_CODEC.get(ti.codec, K_PY)
    c.size = ti.size if ti.size is not None else -1
    c.name = <PyObject *>ti.name
    c.elem_kind = K_PY
    c.elem_oid = 0
    c.enc_text = 0
    c.pydec = <PyObject *>ti.decode
    c.pyenc = <PyObject *>ti.encode
    c.elem_pydec = NULL
    c.tz = <PyObject *>_UTC
    if c.kind == K_ARRAY:
        el = ti.element
        if el is None:
            c.kind = K_PY
        else:
            c.elem_kind = _KIND_BY_CODEC.get(el.codec, K_PY)
            if c.elem_kind == K_ARRAY:
                c.elem_kind = K_PY
            c.elem_oid = el.oid
            c.elem_pydec = <PyObject *>el.decode
            c.pyenc_elem = <PyObject *>el.encode
    return 0
