# Included by _fastcopy.pyx (Cython ``include``: one module, cut into files so that
# none is too long to read); the names it uses come from there and from the files
# included before it.
#
# Per-column encoding: the hot types in C, the others through the twin.

# ---------------------------------------------------------------------------
# Hot-type encoders.  Each writes the length word and the value and returns 0, or
# returns 1 (having written nothing) when the value is not the plain case, so that
# the twin's Python encoder decides (it produces the bytes or the exact error).

cdef extern from "Python.h":
    bint PyList_CheckExact(object o)
    Py_ssize_t PyList_GET_SIZE(object o)
    PyObject *PyList_GET_ITEM(object o, Py_ssize_t i)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    object PyObject_Str(object o)

cdef extern from "math.h":
    bint isinf(double x) nogil

cdef object _uuid_int_get = _uuid_int_slot.__get__


cdef inline void put_len(_Buf buf, Py_ssize_t start, Py_ssize_t n) noexcept:
    dc_put32(buf.data + start, <uint32_t>n)


cdef int enc_numeric(_ColCodec *c, object v, _Buf buf) except -1:
    """Decimal -> numeric, as types.numeric.encode_numeric, from str(v) parsed in C."""
    cdef object s = PyObject_Str(v)
    cdef Py_ssize_t n, i, nd = 0, nfrac = 0, start, k
    cdef const char *t
    cdef char digs[1040]
    cdef uint16_t groups[270]
    cdef int neg = 0, seen_dot = 0, in_exp = 0, eneg = 0, allzero = 1
    cdef int64_t e = 0, exp, e4, shift, dscale, weight
    cdef int ngroups, lead, first, last, g, j, dig
    t = PyUnicode_AsUTF8AndSize(s, &n)
    i = 0
    if n > 0 and t[0] == 45:
        neg = 1
        i = 1
    if i >= n or not (48 <= t[i] <= 57):
        return 1  # NaN, Infinity, sNaN
    while i < n:
        ch = t[i]
        if 48 <= ch <= 57:
            if in_exp:
                e = e * 10 + (ch - 48)
                if e > 100000000:
                    return 1
            else:
                if nd >= 1000:
                    return 1
                digs[nd] = ch - 48
                if ch != 48:
                    allzero = 0
                nd += 1
                if seen_dot:
                    nfrac += 1
        elif ch == 46 and not seen_dot and not in_exp:
            seen_dot = 1
        elif (ch == 69 or ch == 101) and not in_exp:
            in_exp = 1
            if i + 1 < n and (t[i + 1] == 43 or t[i + 1] == 45):
                eneg = t[i + 1] == 45
                i += 1
        else:
            return 1
        i += 1
    exp = (-e if eneg else e) - nfrac
    dscale = -exp if exp < 0 else 0
    if dscale > 0x3FFF:
        return 1
    start = buf.len
    if allzero:
        buf.reserve(12)
        dc_put32(buf.data + start, 8)
        dc_put16(buf.data + start + 4, 0)
        dc_put16(buf.data + start + 6, 0)
        dc_put16(buf.data + start + 8, 0)
        dc_put16(buf.data + start + 10, <uint16_t>dscale)
        buf.len = start + 12
        return 0
    # value = digs * 10**exp; align exp down to a multiple of 4
    e4 = exp // 4 if exp >= 0 else -((-exp + 3) // 4)
    shift = exp - 4 * e4
    for k in range(shift):
        digs[nd] = 0
        nd += 1
    # skip leading zero digits; group q (0 = most significant) covers the digits
    # [nd - 4*ngroups + 4q, +4), those before lead (or before 0) being zeros
    lead = 0
    while lead < nd and digs[lead] == 0:
        lead += 1
    ngroups = <int>((nd - lead + 3) // 4)
    for g in range(ngroups):
        dig = 0
        for k in range(4):
            idx = nd - 4 * ngroups + 4 * g + k
            dig = dig * 10 + (digs[idx] if idx >= lead else 0)
        groups[g] = <uint16_t>dig
    # strip trailing zero groups as the server does
    last = ngroups
    while last > 0 and groups[last - 1] == 0:
        last -= 1
        e4 += 1
    weight = e4 + last - 1
    if last > 0xFFFF or weight < -0x8000 or weight > 0x7FFF:
        return 1
    buf.reserve(12 + 2 * last)
    dc_put32(buf.data + start, <uint32_t>(8 + 2 * last))
    dc_put16(buf.data + start + 4, <uint16_t>last)
    dc_put16(buf.data + start + 6, <uint16_t><int16_t>weight)
    dc_put16(buf.data + start + 8, 0x4000 if neg else 0)
    dc_put16(buf.data + start + 10, <uint16_t>dscale)
    for g in range(last):
        dc_put16(buf.data + start + 12 + 2 * g, groups[g])
    buf.len = start + 12 + 2 * last
    return 0


cdef int enc_array(_ColCodec *c, object v, _Buf buf) except -1:
    """A 1-D list (or []) of hot element values, lower bound 1; else the twin."""
    cdef Py_ssize_t start = buf.len, n, i
    cdef _ColCodec ec
    cdef int hasnull = 0, r
    cdef object e
    if not PyList_CheckExact(v):
        return 1
    n = PyList_GET_SIZE(v)
    if n == 0:
        buf.reserve(16)
        dc_put32(buf.data + start, 12)
        dc_put32(buf.data + start + 4, 0)
        dc_put32(buf.data + start + 8, 0)
        dc_put32(buf.data + start + 12, c.elem_oid)
        buf.len = start + 16
        return 0
    if PyList_CheckExact(<object>PyList_GET_ITEM(v, 0)) or c.elem_kind == K_PY \
            or c.elem_kind == K_ARRAY or n > 0x7FFFFFFF:
        return 1
    ec.kind = c.elem_kind
    ec.size = -1
    ec.tz = c.tz
    buf.reserve(24)
    buf.len = start + 24
    for i in range(n):
        e = <object>PyList_GET_ITEM(v, i)
        if e is None:
            hasnull = 1
            buf.reserve(4)
            dc_put32(buf.data + buf.len, 0xFFFFFFFFu)
            buf.len += 4
            continue
        r = encode_value(&ec, e, buf)
        if r:
            buf.len = start
            return 1
        if buf.len - start > C_MAX_FIELD:
            buf.len = start
            return 1
    dc_put32(buf.data + start, <uint32_t>(buf.len - start - 4))
    dc_put32(buf.data + start + 4, 1)
    dc_put32(buf.data + start + 8, <uint32_t>hasnull)
    dc_put32(buf.data + start + 12, c.elem_oid)
    dc_put32(buf.data + start + 16, <uint32_t>n)
    dc_put32(buf.data + start + 20, 1)
    return 0


cdef int encode_value(_ColCodec *c, object v, _Buf buf) except -1:
    """Write v (length word + bytes) for a hot type; return 1 to ask for the twin."""
    cdef int kind = c.kind
    cdef long long x
    cdef int overflow = 0
    cdef Py_ssize_t n
    cdef const char *t
    cdef double d
    cdef float f
    cdef uint64_t u64
    cdef uint32_t u32
    cdef int64_t days, us
    cdef unsigned char *o
    if kind == K_INT8 or kind == K_INT4 or kind == K_INT2 or kind == K_OID:
        if not PyLong_CheckExact(v):
            return 1
        x = PyLong_AsLongLongAndOverflow(v, &overflow)
        if overflow:
            return 1
        buf.reserve(12)
        o = buf.data + buf.len
        if kind == K_INT8:
            dc_put32(o, 8)
            dc_put64(o + 4, <uint64_t>x)
            buf.len += 12
        elif kind == K_INT4:
            if x < -2147483648 or x > 2147483647:
                return 1
            dc_put32(o, 4)
            dc_put32(o + 4, <uint32_t><int32_t>x)
            buf.len += 8
        elif kind == K_INT2:
            if x < -32768 or x > 32767:
                return 1
            dc_put32(o, 2)
            dc_put16(o + 4, <uint16_t><int16_t>x)
            buf.len += 6
        else:
            if x < 0 or x > 4294967295:
                return 1
            dc_put32(o, 4)
            dc_put32(o + 4, <uint32_t>x)
            buf.len += 8
        return 0
    if kind == K_TEXT or kind == K_JSONB:
        if not PyUnicode_CheckExact(v):
            return 1
        try:
            t = PyUnicode_AsUTF8AndSize(v, &n)
        except UnicodeEncodeError:
            return 1
        if n > C_MAX_FIELD - 1 or memchr(t, 0, n) != NULL:
            return 1
        if kind == K_JSONB:
            buf.reserve(5 + n)
            o = buf.data + buf.len
            dc_put32(o, <uint32_t>(n + 1))
            o[4] = 1
            memcpy(o + 5, t, n)
            buf.len += 5 + n
        else:
            buf.reserve(4 + n)
            o = buf.data + buf.len
            dc_put32(o, <uint32_t>n)
            memcpy(o + 4, t, n)
            buf.len += 4 + n
        return 0
    if kind == K_FLOAT8 or kind == K_FLOAT4:
        if not PyFloat_CheckExact(v):
            return 1
        d = PyFloat_AS_DOUBLE(v)
        buf.reserve(12)
        o = buf.data + buf.len
        if kind == K_FLOAT8:
            memcpy(&u64, &d, 8)
            dc_put32(o, 8)
            dc_put64(o + 4, u64)
            buf.len += 12
        else:
            f = <float>d
            if isinf(f) and not isinf(d):
                return 1
            memcpy(&u32, &f, 4)
            dc_put32(o, 4)
            dc_put32(o + 4, u32)
            buf.len += 8
        return 0
    if kind == K_BOOL:
        if v is True or v is False:
            buf.reserve(5)
            o = buf.data + buf.len
            dc_put32(o, 1)
            o[4] = 1 if v is True else 0
            buf.len += 5
            return 0
        return 1
    if kind == K_TSTZ or kind == K_TS:
        if not PyDateTime_CheckExact(v):
            return 1
        tz = datetime_tzinfo(v)
        if kind == K_TSTZ:
            if tz is not <object>c.tz:
                return 1
        elif tz is not None:
            return 1
        days = ymd_to_days(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v),
                           PyDateTime_GET_DAY(v))
        us = ((days * 86400 + PyDateTime_DATE_GET_HOUR(v) * 3600
               + PyDateTime_DATE_GET_MINUTE(v) * 60 + PyDateTime_DATE_GET_SECOND(v))
              * 1000000 + PyDateTime_DATE_GET_MICROSECOND(v))
        buf.reserve(12)
        o = buf.data + buf.len
        dc_put32(o, 8)
        dc_put64(o + 4, <uint64_t>us)
        buf.len += 12
        return 0
    if kind == K_DATE:
        if not PyDate_CheckExact(v):
            return 1
        days = ymd_to_days(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v),
                           PyDateTime_GET_DAY(v))
        buf.reserve(8)
        o = buf.data + buf.len
        dc_put32(o, 4)
        dc_put32(o + 4, <uint32_t><int32_t>days)
        buf.len += 8
        return 0
    if kind == K_BYTEA:
        if not PyBytes_CheckExact(v):
            return 1
        n = PyBytes_GET_SIZE(v)
        if n > C_MAX_FIELD:
            return 1
        buf.reserve(4 + n)
        o = buf.data + buf.len
        dc_put32(o, <uint32_t>n)
        memcpy(o + 4, PyBytes_AS_STRING(v), n)
        buf.len += 4 + n
        return 0
    if kind == K_NUMERIC:
        if type(v) is not _Decimal:
            return 1
        return enc_numeric(c, v, buf)
    if kind == K_UUID:
        if type(v) is not _UUID:
            return 1
        buf.reserve(20)
        o = buf.data + buf.len
        dc_long_to_16(_uuid_int_get(v), o + 4)
        dc_put32(o, 16)
        buf.len += 20
        return 0
    if kind == K_ARRAY:
        return enc_array(c, v, buf)
    return 1
