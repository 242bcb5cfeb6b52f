"""inet, cidr (as ``ipaddress`` objects), macaddr, macaddr8 (as str)."""
from __future__ import annotations

import ipaddress

from ...errors import EncodeError
from .core import (EE_MAC, ER_ADDR_LEN, ER_BITS, ER_FAMILY, ER_MIN_SIZE, ER_SIZE,
                   _type_error)

__all__ = ["decode_inet", "encode_inet", "decode_cidr", "encode_cidr", "decode_macaddr",
           "encode_macaddr", "decode_macaddr8", "encode_macaddr8"]

_PGSQL_AF_INET = 2
_PGSQL_AF_INET6 = 3


def _decode_net(b: bytes):
    n = len(b)
    if n < 4:
        raise ValueError(ER_MIN_SIZE.format(n=n, size=4))
    # b[2] is the is_cidr flag; receive ignores it, the column type decides
    family, bits, nb = b[0], b[1], b[3]
    if family == _PGSQL_AF_INET:
        size = 4
    elif family == _PGSQL_AF_INET6:
        size = 16
    else:
        raise ValueError(ER_FAMILY.format(family=family))
    if nb != size:
        raise ValueError(ER_ADDR_LEN.format(nb=nb))
    if n != 4 + size:
        raise ValueError(ER_SIZE.format(n=n, size=4 + size))
    if bits > size * 8:
        raise ValueError(ER_BITS.format(bits=bits))
    return family, bits, b[4:]


def decode_inet(b: bytes):
    family, bits, addr = _decode_net(b)
    if family == _PGSQL_AF_INET:
        return ipaddress.IPv4Interface((addr, bits))
    return ipaddress.IPv6Interface((addr, bits))


def decode_cidr(b: bytes):
    family, bits, addr = _decode_net(b)
    # strict: a cidr value never has bits set right of its mask
    if family == _PGSQL_AF_INET:
        return ipaddress.IPv4Network((addr, bits))
    return ipaddress.IPv6Network((addr, bits))


def _net_bytes(ip, bits: int, is_cidr: int) -> bytes:
    fam = _PGSQL_AF_INET if ip.version == 4 else _PGSQL_AF_INET6
    packed = ip.packed
    return bytes((fam, bits, is_cidr, len(packed))) + packed


def encode_inet(v) -> bytes:
    if isinstance(v, str):
        try:
            v = ipaddress.ip_interface(v)
        except ValueError as exc:
            raise EncodeError(f"invalid inet value: {exc}") from None
    if isinstance(v, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return _net_bytes(v.ip, v.network.prefixlen, 0)
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return _net_bytes(v, v.max_prefixlen, 0)
    if isinstance(v, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return _net_bytes(v.network_address, v.prefixlen, 0)
    raise _type_error("ipaddress interface", "inet", v)


def encode_cidr(v) -> bytes:
    if isinstance(v, str):
        try:
            v = ipaddress.ip_network(v)
        except ValueError as exc:
            raise EncodeError(f"invalid cidr value: {exc}") from None
    if isinstance(v, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return _net_bytes(v.network_address, v.prefixlen, 1)
    raise _type_error("ipaddress network", "cidr", v)


def _mac_codec(size: int, name: str):
    def decode(b: bytes) -> str:
        if len(b) != size:
            raise ValueError(ER_SIZE.format(n=len(b), size=size))
        return b.hex(":")

    def encode(v) -> bytes:
        if not isinstance(v, str):
            raise _type_error("str", name, v)
        h = v.replace(":", "").replace("-", "").replace(".", "")
        if len(h) != 2 * size:
            raise EncodeError(EE_MAC.format(name=name, value=v))
        try:
            return bytes.fromhex(h)
        except ValueError:
            raise EncodeError(EE_MAC.format(name=name, value=v)) from None
    return decode, encode


decode_macaddr, encode_macaddr = _mac_codec(6, "macaddr")
decode_macaddr8, encode_macaddr8 = _mac_codec(8, "macaddr8")
