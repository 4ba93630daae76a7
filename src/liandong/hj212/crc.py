"""HJ 212 check codes: the Appendix A CRC and the CRC-16/MODBUS variants seen in the wild.

The Appendix A algorithm is *not* CRC-16/ARC or MODBUS: before each byte the register is
shifted right by 8 and the old low byte is discarded, so after every step the register equals
``T[(h ^ b)]`` where ``h`` is the previous high byte and ``T`` the reflected-0xA001 table.
Only the high byte carries state, and it evolves as ``h' = L(h ^ b)`` with ``L(x) = T[x] >> 8``.
``L`` is linear over GF(2) and ``L**8`` is the identity, which gives a fast closed form:

    x_n = L^(n-1)(0xFF) ^ XOR_j L^((n-1-j) mod 8)(data[j]),   crc = T[x_n]

so the bytes only need XOR-folding by position mod 8 (done with C-level big-int operations),
followed by eight table lookups. That keeps the decoder's hot path free of a per-byte Python
loop; ``hj212_crc16_bytewise`` is the literal Appendix A form kept for cross-checking.
"""

from __future__ import annotations

import enum

__all__ = [
    "CrcVariant",
    "crc_hex",
    "hj212_crc16",
    "hj212_crc16_bytewise",
    "match_crc",
    "modbus_crc16",
]


class CrcVariant(enum.Enum):
    """Which check-code algorithm a frame carried."""

    HJ212 = "hj212"
    """HJ 212 Appendix A, printed MSB first (the standard)."""
    MODBUS_MSB = "modbus-msb"
    """CRC-16/MODBUS printed MSB first (non-conformant simulators and loggers)."""
    MODBUS_LSB = "modbus-lsb"
    """CRC-16/MODBUS printed byte-swapped, as Modbus RTU puts it on the wire."""


def _arc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_T = _arc_table()
_L = tuple(t >> 8 for t in _T)


def _power(k: int) -> tuple[int, ...]:
    """The table of L**k (L**0 is the identity)."""
    table = tuple(range(256))
    for _ in range(k):
        table = tuple(_L[x] for x in table)
    return table


_LPOW = tuple(_power(k) for k in range(8))
assert _power(8) == _LPOW[0], "L**8 must be the identity for the folded CRC"

# Byte p of the folded 64-bit word contributes L**((s - p) mod 8) = L**s . L**(-p mod 8); the
# L**(-p) part is position-only, so it is folded into 16-bit lookup tables (two bytes each).
_W = tuple(
    bytes(_LPOW[(-2 * q) % 8][w & 0xFF] ^ _LPOW[(-2 * q - 1) % 8][w >> 8] for w in range(0x10000))
    for q in range(4)
)
_W0, _W1, _W2, _W3 = _W
# Final step for s = (n - 1) mod 8: crc = T[L**s(0xFF ^ u)].
_FINAL = tuple(tuple(_T[_LPOW[s][0xFF ^ u]] for u in range(256)) for s in range(8))
_FOLD_MASKS = {64 * k: (1 << (64 * k)) - 1 for k in range(1, 131)}


def hj212_crc16(data: bytes) -> int:
    """HJ 212 Appendix A CRC of the data segment bytes (UTF-8). ``b""`` gives 0xFFFF."""
    n = len(data)
    if n == 0:
        return 0xFFFF
    v = int.from_bytes(data, "little")
    bits = n * 8
    masks = _FOLD_MASKS
    while bits > 64:
        half = ((bits + 127) >> 7) << 6  # ceil(bits / 2) rounded up to whole 64-bit words
        mask = masks.get(half)
        if mask is None:
            mask = (1 << half) - 1
        v = (v >> half) ^ (v & mask)
        bits = half
    u = _W0[v & 0xFFFF] ^ _W1[(v >> 16) & 0xFFFF] ^ _W2[(v >> 32) & 0xFFFF] ^ _W3[v >> 48]
    return _FINAL[(n - 1) & 7][u]


def hj212_crc16_bytewise(data: bytes) -> int:
    """Appendix A as written (table form), one byte at a time."""
    crc = 0xFFFF
    table = _T
    for b in data:
        crc = table[(crc >> 8) ^ b]
    return crc


def modbus_crc16(data: bytes) -> int:
    """CRC-16/MODBUS (check value 0x4B37 for b"123456789")."""
    crc = 0xFFFF
    table = _T
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc


def crc_hex(data: bytes, variant: CrcVariant = CrcVariant.HJ212) -> str:
    """The 4-digit upper-case check code as it is printed in a frame."""
    if variant is CrcVariant.HJ212:
        return f"{hj212_crc16(data):04X}"
    crc = modbus_crc16(data)
    if variant is CrcVariant.MODBUS_LSB:
        crc = ((crc & 0xFF) << 8) | (crc >> 8)
    return f"{crc:04X}"


def match_crc(data: bytes, given: str, accepted: frozenset[CrcVariant]) -> CrcVariant | None:
    """Which variant's check code equals ``given`` (case-insensitive).

    HJ212 is always tried first; the MODBUS variants only when listed in ``accepted``.
    """
    wanted = given.upper()
    if crc_hex(data) == wanted:
        return CrcVariant.HJ212
    for variant in (CrcVariant.MODBUS_MSB, CrcVariant.MODBUS_LSB):
        if variant in accepted and crc_hex(data, variant) == wanted:
            return variant
    return None
