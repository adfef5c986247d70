"""`net.cidr_*` built-ins as OPA computes them: Go's `net.ParseIP`, `net.ParseCIDR` and `IPNet.Contains`.

Owns: the CIDR built-ins whose regorus version answers otherwise than OPA's (ADR 0008, item 17):
`net.cidr_contains` (Go compares an IPv4-mapped IPv6 address, `::ffff:10.1.2.3`, as the IPv4
address it maps, and reads `::ffff:10.0.0.0/104` as `10.0.0.0/8`; regorus did neither, so an
IP blocklist let such an address through), `net.cidr_intersects` (unknown to regorus) and
`net.cidr_is_valid` (false, not an error, for a non-string). Addresses are kept as Go keeps
them, 4 or 16 bytes, so `Contains` follows Go's `networkNumberAndMask` byte for byte. An
invalid operand is undefined (conftest and Gatekeeper run OPA without StrictBuiltinErrors).

Leaves out: `net.cidr_expand` (`_gobuiltins`), `net.cidr_merge` and `net.cidr_contains_matches`
(regorus has neither: a call is an evaluation error, exit 3), `net.lookup_ip_addr` (refused at
load, `_compile_checks`). Imported at the first call of one of these built-ins.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from trustgate.policy._gobuiltins import _BuiltinError, _string

_V4_IN_V6 = bytes(10) + b"\xff\xff"
_DIGITS = re.compile(r"[0-9]+")


def _parse_addr(text: str) -> tuple[bytes, int] | None:
    """Go's `netip.ParseAddr` without a zone: the 16-byte form and the bit length (32 or 128)."""
    # netip decides by the first `.` or `:`; Python's parser agrees on what each accepts
    # (no leading zeros in IPv4 fields, at most four hex digits a group), but takes a zone.
    if "%" in text or not text.isascii():
        return None
    for ch in text:
        if ch == ".":
            try:
                return _V4_IN_V6 + ipaddress.IPv4Address(text).packed, 32
            except ValueError:
                return None
        if ch == ":":
            try:
                return ipaddress.IPv6Address(text).packed, 128
            except ValueError:
                return None
    return None


def _to4(ip: bytes) -> bytes | None:
    """Go's `IP.To4`."""
    if len(ip) == 4:
        return ip
    if len(ip) == 16 and ip[:12] == _V4_IN_V6:
        return ip[12:]
    return None


def _cidr_mask(ones: int, bits: int) -> bytes:
    return (((1 << ones) - 1) << (bits - ones)).to_bytes(bits // 8, "big")


def _mask(ip: bytes, mask: bytes) -> bytes | None:
    """Go's `IP.Mask`."""
    if len(mask) == 16 and len(ip) == 4 and mask[:12] == b"\xff" * 12:
        mask = mask[12:]
    if len(mask) == 4 and len(ip) == 16 and ip[:12] == _V4_IN_V6:
        ip = ip[12:]
    if len(ip) != len(mask):
        return None
    return bytes(a & b for a, b in zip(ip, mask, strict=True))


class _Net:
    """Go's `IPNet`: the masked address (4 or 16 bytes) and the mask."""

    __slots__ = ("ip", "mask")

    def __init__(self, ip: bytes, mask: bytes) -> None:
        self.ip, self.mask = ip, mask

    def contains(self, ip: bytes) -> bool:
        """Go's `IPNet.Contains` with `networkNumberAndMask`."""
        nn = _to4(self.ip)
        if nn is None:
            nn = self.ip if len(self.ip) == 16 else b""
        mask = self.mask
        if len(mask) == 4 and len(nn) != 4:
            nn = b""
        elif len(mask) == 16 and len(nn) == 4:
            mask = mask[12:]
        ip = _to4(ip) or ip
        if not nn or len(ip) != len(nn):
            return False
        return all(a & m == b & m for a, b, m in zip(nn, ip, mask, strict=True))

    def last(self) -> bytes:
        """OPA's `getLastIP`: the network's last address, as long as the mask."""
        ones, bits = sum(bin(b).count("1") for b in self.mask), len(self.mask) * 8
        if ones == bits:
            return self.ip
        value = int.from_bytes(self.ip, "big") | ((1 << (bits - ones)) - 1)
        return (value & ((1 << bits) - 1)).to_bytes(bits // 8, "big")


def _parse_cidr(text: str) -> _Net | None:
    """Go's `net.ParseCIDR` (the network; Go's `dtoi` takes leading zeros in the length)."""
    addr, slash, length = text.partition("/")
    parsed = _parse_addr(addr) if slash else None
    if parsed is None or not _DIGITS.fullmatch(length):
        return None
    digits = length.lstrip("0")  # leading zeros add nothing to dtoi's value, however many
    ones = int(digits or "0") if len(digits) <= 8 else 1 << 24  # dtoi stops at 0xFFFFFF
    ip16, bits = parsed
    if ones > bits:
        return None
    mask = _cidr_mask(ones, bits)
    masked = _mask(ip16, mask)
    assert masked is not None  # 16 bytes with a 16-byte mask, or v4-in-v6 with a 4-byte one
    return _Net(masked, mask)


def _net_operand(value: Any) -> _Net:
    net = _parse_cidr(_string(value))
    if net is None:
        raise _BuiltinError("invalid CIDR address")
    return net


def cidr_contains(cidr: Any, value: Any) -> list[Any]:
    """OPA's `net.cidr_contains`: an address (Go's `ParseIP`) or, failing that, a network."""
    outer = _net_operand(cidr)
    text = _string(value)
    parsed = _parse_addr(text)
    if parsed is not None:
        return [True, outer.contains(parsed[0])]
    inner = _net_operand(text)
    return [True, outer.contains(inner.ip) and outer.contains(inner.last())]


def cidr_intersects(a: Any, b: Any) -> list[Any]:
    """OPA's `net.cidr_intersects`: either network holds the other's first address."""
    first, second = _net_operand(a), _net_operand(b)
    return [True, first.contains(second.ip) or second.contains(first.ip)]


def cidr_is_valid(value: Any) -> list[Any]:
    """OPA's `net.cidr_is_valid`: false for what Go's `ParseCIDR` refuses and for a non-string."""
    return [True, isinstance(value, str) and _parse_cidr(value) is not None]
