"""The case document hash is plain SHA-256 of the UTF-8 text, however it is fed."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from casefile.adapters.write_tx import sha256_text


def test_known_digest() -> None:
    # sha256 of b"abc" (FIPS 180-2 test vector)
    assert sha256_text("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_long_non_ascii_text_across_chunk_edges() -> None:
    # 3-byte characters straddle the 2047-byte chunk boundaries
    text = "排放口" * 5000 + "x"
    assert sha256_text(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()


@settings(max_examples=100)
@given(st.text(min_size=0, max_size=9000))
def test_same_as_hashlib(text: str) -> None:
    assert sha256_text(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()
