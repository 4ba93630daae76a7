from hypothesis import given, settings
from hypothesis import strategies as st

from liandong.hj212.crc import (
    CrcVariant,
    crc_hex,
    hj212_crc16,
    hj212_crc16_bytewise,
    match_crc,
    modbus_crc16,
)
from tests.unit.gateway.reference import appendix_a_crc, modbus_crc


def test_check_values_from_the_standard() -> None:
    assert hj212_crc16(b"") == 0xFFFF
    assert hj212_crc16(b"123456789") == 0x2F80
    assert hj212_crc16_bytewise(b"123456789") == 0x2F80
    assert modbus_crc16(b"123456789") == 0x4B37


def test_appendix_a_example() -> None:
    segment = (
        b"QN=20160801085857223;ST=32;CN=1062;PW=100000;"
        b"MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&"
    )
    assert crc_hex(segment) == "1C80"


def test_crc_hex_is_zero_padded_upper_case() -> None:
    # "QN=1;CP=&&&&" has Appendix A CRC 0x6900 (the reference gives the same, see below)
    assert appendix_a_crc(b"QN=1;CP=&&&&") == 0x6900
    assert crc_hex(b"QN=1;CP=&&&&") == "6900"
    assert crc_hex(b"123456789", CrcVariant.MODBUS_MSB) == "4B37"
    assert crc_hex(b"123456789", CrcVariant.MODBUS_LSB) == "374B"


@settings(max_examples=300)
@given(st.binary(max_size=2100))
def test_fast_crc_equals_appendix_a(data: bytes) -> None:
    assert hj212_crc16(data) == appendix_a_crc(data)
    assert hj212_crc16_bytewise(data) == appendix_a_crc(data)


@given(st.binary(max_size=300))
def test_modbus_equals_reference(data: bytes) -> None:
    assert modbus_crc16(data) == modbus_crc(data)


def test_low_byte_of_hj212_crc_is_one_of_eight_values() -> None:
    # hj212.md §2: only 256 CRC values exist, low byte in {00,01,40,41,80,81,C0,C1}
    lows = {hj212_crc16(bytes([a, b])) & 0xFF for a in range(0, 256, 7) for b in range(256)}
    assert lows <= {0x00, 0x01, 0x40, 0x41, 0x80, 0x81, 0xC0, 0xC1}


def test_match_crc_variants_are_opt_in() -> None:
    data = b"123456789"
    assert match_crc(data, "2f80", frozenset()) is CrcVariant.HJ212
    assert match_crc(data, "4B37", frozenset()) is None
    assert match_crc(data, "4b37", frozenset({CrcVariant.MODBUS_MSB})) is CrcVariant.MODBUS_MSB
    assert match_crc(data, "374B", frozenset({CrcVariant.MODBUS_MSB})) is None
    assert match_crc(data, "374B", frozenset({CrcVariant.MODBUS_LSB})) is CrcVariant.MODBUS_LSB
    assert match_crc(data, "0000", frozenset(CrcVariant)) is None
