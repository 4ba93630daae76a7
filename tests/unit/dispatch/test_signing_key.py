"""The phone API's signing key: never a constant in the source (issue 12, item 2)."""

from __future__ import annotations

import stat
from pathlib import Path

import jwt
import pytest

from dispatch.config import DispatchConfig
from liandong.tokens import phone as tokens

# the constant today's code signed with when LIANDONG_DISPATCH_JWT_KEY was unset
OLD_CONSTANT = "liandong-dev-only-change-me-32-bytes!"


def test_embedded_key_is_generated_per_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIANDONG_DISPATCH_JWT_KEY", raising=False)
    monkeypatch.setenv("LIANDONG_DISPATCH_JWT_KEY_FILE", str(tmp_path / "a" / "dispatch-jwt.key"))
    first = tokens.signing_key()
    assert first == tokens.signing_key() == DispatchConfig().jwt_key  # kept, not regenerated
    key_file = tmp_path / "a" / "dispatch-jwt.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    monkeypatch.setenv("LIANDONG_DISPATCH_JWT_KEY_FILE", str(tmp_path / "b" / "dispatch-jwt.key"))
    second = tokens.signing_key()
    assert first != second
    assert OLD_CONSTANT not in (first, second)
    assert len(first) >= 32


def test_token_minted_with_the_old_constant_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIANDONG_DISPATCH_JWT_KEY", raising=False)
    monkeypatch.setenv("LIANDONG_DISPATCH_JWT_KEY_FILE", str(tmp_path / "dispatch-jwt.key"))
    forged = tokens.issue("mallory", "DUTY_MANAGER", ["32"], key=OLD_CONSTANT)
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(forged)
    assert tokens.verify(tokens.issue("p1", "DUTY_MANAGER", ["32"])).person_id == "p1"


def test_configured_key_wins_and_no_file_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIANDONG_DISPATCH_JWT_KEY", "k" * 40)
    monkeypatch.setenv("LIANDONG_DISPATCH_JWT_KEY_FILE", str(tmp_path / "dispatch-jwt.key"))
    assert tokens.signing_key() == "k" * 40
    assert not (tmp_path / "dispatch-jwt.key").exists()


def test_embedded_key_warns_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("LIANDONG_DISPATCH_JWT_KEY", raising=False)
    monkeypatch.setenv("LIANDONG_DISPATCH_JWT_KEY_FILE", str(tmp_path / "w.key"))
    tokens.signing_key()
    tokens.signing_key()
    warnings = [r for r in caplog.records if "LIANDONG_DISPATCH_JWT_KEY unset" in r.getMessage()]
    assert len(warnings) == 1
    assert (
        jwt.decode(
            tokens.issue("p", "ENFORCEMENT", ["3201"]),
            tokens.signing_key(),
            algorithms=["HS256"],
            issuer="liandong",
        )["sub"]
        == "p"
    )
