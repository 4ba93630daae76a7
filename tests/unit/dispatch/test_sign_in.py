"""Embedded sign-in: argon2 passwords, short-lived access tokens, rotating refresh tokens,
sign-out; and `liandong people set-password`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from dispatch.adapters.credentials import CredentialStore
from dispatch.entrypoints.phone_api import create_app
from liandong.cli import app as cli
from liandong.tokens.phone import verify
from tests.unit.dispatch.harness import Harness, build

KEY = "test-signing-key-of-at-least-32-bytes"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[Harness, httpx.AsyncClient]]:
    h = build(tmp_path)
    CredentialStore(h.service.store.engine).set_password("e1", "correct horse battery")
    app = create_app(h.service, KEY)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield h, c
    h.close()


async def sign_in(c: httpx.AsyncClient, pid: str, password: str) -> httpx.Response:
    return await c.post("/v1/auth/token", json={"person_id": pid, "password": password})


async def test_a_person_signs_in_and_gets_a_short_token_for_their_roster_role(env) -> None:
    _, c = env
    r = await sign_in(c, "e1", "correct horse battery")
    assert r.status_code == 200
    body = r.json()
    assert body["expires_in"] == 900 and body["person"]["role"] == "ENFORCEMENT"
    assert body["person"]["name"] == "name of e1" and body["person"]["jurisdiction"] == ["320106"]
    p = verify(body["access_token"], KEY)
    assert (p.person_id, p.role.value, p.jurisdiction) == ("e1", "ENFORCEMENT", ("320106",))
    me = await c.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["person_id"] == "e1"
    assert me.json()["photo_max_bytes"] > 0


async def test_wrong_passwords_unknown_people_and_foreign_roles_are_refused(env) -> None:
    _, c = env
    assert (await sign_in(c, "e1", "wrong")).status_code == 401
    assert (await sign_in(c, "nobody", "correct horse battery")).status_code == 401
    # the message does not say which of the two was wrong
    assert (await sign_in(c, "e1", "wrong")).json() == (await sign_in(c, "nobody", "x")).json()
    r = await c.post(
        "/v1/auth/token",
        json={"person_id": "e1", "password": "correct horse battery", "role": "DUTY_MANAGER"},
    )
    assert r.status_code == 403 and "does not hold" in r.json()["detail"]
    assert (await c.get("/v1/me")).status_code == 401


async def test_refresh_rotates_and_a_reused_refresh_token_signs_out_everywhere(env) -> None:
    _, c = env
    first = (await sign_in(c, "e1", "correct horse battery")).json()
    r1 = await c.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r1.status_code == 200
    second = r1.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert verify(second["access_token"], KEY).person_id == "e1"
    # the spent token again: refused, and the live one is revoked with it (it was copied)
    again = await c.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert again.status_code == 401
    live = await c.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert live.status_code == 401


async def test_sign_out_revokes_the_refresh_token(env) -> None:
    _, c = env
    s = (await sign_in(c, "e1", "correct horse battery")).json()
    assert (
        await c.post("/v1/auth/revoke", json={"refresh_token": s["refresh_token"]})
    ).status_code == 204
    r = await c.post("/v1/auth/refresh", json={"refresh_token": s["refresh_token"]})
    assert r.status_code == 401


def test_passwords_are_argon2_hashes_and_a_new_one_ends_sessions(tmp_path: Path) -> None:
    h = build(tmp_path)
    try:
        store = CredentialStore(h.service.store.engine)
        store.set_password("e1", "first password")
        token = store.issue_refresh("e1", "ENFORCEMENT")
        with pytest.raises(ValueError):
            store.set_password("e1", "short")
        store.set_password("e1", "second password")
        assert not store.check_password("e1", "first password")
        assert store.check_password("e1", "second password")
        from sqlmodel import Session

        from dispatch.adapters.credentials import CredentialRow

        with Session(h.service.store.engine) as s:
            row = s.get(CredentialRow, "e1")
        assert row is not None and row.password_hash.startswith("$argon2id$")
        from dispatch.adapters.credentials import RefreshRefused

        with pytest.raises(RefreshRefused):
            store.rotate(token)
    finally:
        h.close()


def test_cli_sets_a_password_in_dispatchs_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'dispatch.db'}"
    monkeypatch.setenv("LIANDONG_DISPATCH_DB", url)
    r = CliRunner().invoke(
        cli, ["people", "set-password", "p-enf-01", "--password-stdin"], input="s3cret-pass\n"
    )
    assert r.exit_code == 0, r.output
    from dispatch.adapters.store import make_engine

    assert CredentialStore(make_engine(url)).check_password("p-enf-01", "s3cret-pass")
    short = CliRunner().invoke(
        cli, ["people", "set-password", "x", "--password-stdin"], input="abc\n"
    )
    assert short.exit_code == 2


def test_tokens_issue_for_phone_and_casefile_share_one_claim_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jwt

    monkeypatch.setenv("LIANDONG_DISPATCH_JWT_KEY", KEY)
    monkeypatch.setenv("LIANDONG_JWT_KEY", "casefile-key-of-at-least-32-bytes!!")
    args = ["tokens", "issue", "--sub", "p-enf-01", "--role", "officer", "--jurisdiction", "320115"]
    phone = CliRunner().invoke(cli, [*args, "--for", "phone"])
    casefile = CliRunner().invoke(cli, [*args, "--for", "casefile"])
    assert phone.exit_code == 0 and casefile.exit_code == 0, phone.output + casefile.output
    p = verify(phone.output.strip(), KEY)
    assert (p.person_id, p.role.value, p.jurisdiction) == ("p-enf-01", "ENFORCEMENT", ("320115",))
    shape = {"sub", "roles", "jurisdiction", "iss", "iat", "exp"}
    for out in (phone.output, casefile.output):
        claims = jwt.decode(out.strip(), options={"verify_signature": False})
        assert shape <= set(claims), claims
    bad = CliRunner().invoke(cli, [*args, "--for", "pager"])
    assert bad.exit_code == 2


def test_make_up_gives_each_demo_person_a_random_password_once(tmp_path: Path) -> None:
    from dispatch.adapters.store import make_engine
    from dispatch.entrypoints.people_cli import ensure_demo_passwords

    registry = Path(__file__).resolve().parents[3] / "deploy" / "registry" / "demo.yaml"
    url = f"sqlite:///{tmp_path / 'dispatch.db'}"
    kept = tmp_path / "up" / "demo-passwords.txt"
    first = ensure_demo_passwords(registry, url, kept)
    assert {r.person_id for r in first} >= {"p-enf-01", "p-enf-02", "p-mon-01", "p-mgr-01"}
    assert all(len(r.password) >= 12 for r in first)
    assert len({r.password for r in first}) == len(first)  # no shared constant
    assert kept.stat().st_mode & 0o777 == 0o600
    store = CredentialStore(make_engine(url))
    assert all(store.check_password(r.person_id, r.password) for r in first)
    again = ensure_demo_passwords(registry, url, kept)
    assert [r.password for r in again] == [""] * len(first)  # kept, not replaced
