"""Native hot path of the HJ 212 decoder (see src/lib.rs)."""

def decode_clean(
    frame: bytes, max_segment: int
) -> (
    tuple[
        str,
        str,
        str,
        str,
        str,
        int,
        int | None,
        int | None,
        str,
        dict[str, str],
        list[tuple[str, dict[str, str]]],
    ]
    | None
): ...
def crc16(data: bytes) -> int: ...
