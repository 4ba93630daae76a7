"""Independent reference implementations for the tests (written from the spec, not the code)."""


def appendix_a_crc(data: bytes) -> int:
    """HJ 212-2017 Appendix A, bit by bit as printed in the standard."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ byte
        for _ in range(8):
            lsb = crc & 1
            crc >>= 1
            if lsb:
                crc ^= 0xA001
    return crc & 0xFFFF


def modbus_crc(data: bytes) -> int:
    """CRC-16/MODBUS, bit by bit."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def frame_with(segment: str, crc: str | None = None, tail: bytes = b"\r\n") -> bytes:
    """A frame assembled by hand: correct UTF-8 length, Appendix A CRC unless given."""
    data = segment.encode("utf-8")
    check = crc if crc is not None else f"{appendix_a_crc(data):04X}"
    return b"##" + f"{len(data):04d}".encode() + data + check.encode() + tail
