"""Per-service ES256 keys: tokens a service signs with its own key are verified only with its
public key and never carry more than role SERVICE acting for field staff; the shared HS256
key can no longer speak for a keyed service. Real EC keys and real signatures throughout."""

from __future__ import annotations

import multiprocessing
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from liandong.tokens.claims import AUDIENCE, ISSUER, ClaimRefused, Role, Unauthenticated
from liandong.tokens.issuing import issue, issue_service
from liandong.tokens.keys import (
    load_private_key,
    load_public_key,
    local_key_pair,
    new_private_key,
    parse_service_keys,
    private_pem,
    public_path_of,
    public_pem,
    write_key_pair,
)
from liandong.tokens.verifying import AuthConfig, TokenVerifier

HS_KEY = "unit-test-key-0123456789abcdef0123"
DISPATCH = new_private_key()
MALLORY = new_private_key()


def verifier(**extra: Any) -> TokenVerifier:
    return TokenVerifier(
        AuthConfig(hs_key=HS_KEY, service_keys={"dispatch": DISPATCH.public_key()}, **extra)
    )


def test_dispatch_token_is_a_service_acting_for_an_officer() -> None:
    token = issue_service(DISPATCH, service="dispatch", act={"sub": "o1", "roles": ["officer"]})
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": "dispatch", "typ": "JWT"}
    p = verifier().verify(token)
    assert (p.subject, p.roles, p.jurisdictions) == ("dispatch", {Role.SERVICE}, ())
    assert p.on_behalf_of is not None
    assert (p.on_behalf_of.subject, p.on_behalf_of.roles) == ("o1", {Role.ENFORCEMENT_OFFICER})
    assert p.actor == "o1" and p.key == "dispatch>o1"
    staff = issue_service(DISPATCH, service="dispatch", act={"sub": "m1", "roles": ["monitoring"]})
    person = verifier().verify(staff).on_behalf_of
    assert person is not None and person.roles == {Role.MONITORING_STAFF}
    alone = verifier().verify(issue_service(DISPATCH, service="dispatch"))
    assert alone.roles == {Role.SERVICE} and alone.on_behalf_of is None


def test_a_keyed_service_is_trusted_and_other_tokens_keep_working() -> None:
    config = AuthConfig(
        hs_key=HS_KEY,
        trusted_services=frozenset({"intake"}),
        service_keys={"dispatch": DISPATCH.public_key()},
    )
    assert config.trusted_services == {"intake", "dispatch"}
    v = TokenVerifier(config)
    officer = v.verify(issue(HS_KEY, sub="o1", roles=["officer"]))
    assert officer.roles == {Role.ENFORCEMENT_OFFICER}
    boss = v.verify(issue(HS_KEY, sub="boss", roles=["admin"]))
    assert boss.roles == {Role.ADMIN}
    # a trusted service without a key keeps the HS256 path (compatibility)
    assert v.verify(issue(HS_KEY, sub="intake", roles=["service"])).roles == {Role.SERVICE}


def test_the_shared_hs256_key_cannot_speak_for_a_keyed_service() -> None:
    claims: dict[str, Any] = {"act": {"sub": "o1", "roles": ["officer"]}}
    forged = issue(HS_KEY, sub="dispatch", roles=["service"], **claims)
    with pytest.raises(Unauthenticated, match="signs with its own key"):
        verifier().verify(forged)
    # nor with kid=dispatch in the header: the header picks the EC key, HS256 is not accepted
    now = int(datetime.now(UTC).timestamp())
    body = {"sub": "dispatch", "roles": ["service"], "iss": ISSUER, "aud": AUDIENCE}
    hs_with_kid = jwt.encode(
        body | {"exp": now + 300}, HS_KEY, algorithm="HS256", headers={"kid": "dispatch"}
    )
    with pytest.raises(Unauthenticated, match="not allowed"):
        verifier().verify(hs_with_kid)
    # and not as a person either: an admin token in the service's name
    with pytest.raises(Unauthenticated, match="signs with its own key"):
        verifier().verify(issue(HS_KEY, sub="dispatch", roles=["admin"]))
    # without a key configured for it, the same token is the legacy trusted service
    legacy = TokenVerifier(AuthConfig(hs_key=HS_KEY)).verify(forged)
    assert legacy.roles == {Role.SERVICE}


def test_another_ec_key_claiming_to_be_dispatch_is_refused() -> None:
    token = issue_service(MALLORY, service="dispatch", act={"sub": "o1", "roles": ["officer"]})
    with pytest.raises(Unauthenticated, match="Signature verification failed"):
        verifier().verify(token)
    # and a keyed service cannot speak for another one: kid picks the key, sub must match it
    intake = new_private_key()
    both = TokenVerifier(
        AuthConfig(service_keys={"dispatch": DISPATCH.public_key(), "intake": intake.public_key()})
    )
    now = int(datetime.now(UTC).timestamp())
    swapped = jwt.encode(
        {"sub": "dispatch", "roles": ["service"], "exp": now + 300, "iss": ISSUER, "aud": AUDIENCE},
        intake,
        algorithm="ES256",
        headers={"kid": "intake"},
    )
    with pytest.raises(ClaimRefused, match="names sub 'dispatch'"):
        both.verify(swapped)


@pytest.mark.parametrize("role", ["admin", "ADMIN", "service"])
def test_acting_for_an_admin_or_a_service_is_refused(role: str) -> None:
    for roles in ([role], ["officer", role]):
        token = issue_service(DISPATCH, service="dispatch", act={"sub": "boss", "roles": roles})
        with pytest.raises(ClaimRefused, match="only for officers and monitoring staff"):
            verifier().verify(token)


@pytest.mark.parametrize("role", ["manager", "MANAGER"])
def test_a_manager_is_acted_for_alone_or_not_at_all(role: str) -> None:
    """The console reads for a manager (domain.access allows reads only); a manager mixed with
    a field role would let one token both read as a manager and record as an officer."""
    act = {"sub": "boss", "roles": [role], "jurisdiction": ["3201"]}
    p = verifier().verify(issue_service(DISPATCH, service="dispatch", act=act))
    assert p.roles == frozenset({Role.SERVICE}) and p.on_behalf_of is not None
    assert p.on_behalf_of.roles == frozenset({Role.MANAGER})
    assert p.on_behalf_of.jurisdictions == ("3201",)
    for roles in (["officer", role], [role, "monitoring"]):
        token = issue_service(DISPATCH, service="dispatch", act={"sub": "boss", "roles": roles})
        with pytest.raises(ClaimRefused, match="for a manager alone"):
            verifier().verify(token)


def test_acts_do_not_nest_and_must_be_objects() -> None:
    nested = {"sub": "o1", "roles": ["officer"], "act": {"sub": "boss", "roles": ["admin"]}}
    with pytest.raises(ClaimRefused, match="do not nest"):
        verifier().verify(issue_service(DISPATCH, service="dispatch", act=nested))


@pytest.mark.parametrize(
    "roles", [["admin"], ["service", "admin"], ["manager"], [], ["officer"], ["SERVICE", "service"]]
)
def test_a_service_token_claiming_any_other_role_is_refused(roles: list[str]) -> None:
    token = issue_service(DISPATCH, service="dispatch", roles=roles)
    with pytest.raises(ClaimRefused, match="role service only"):
        verifier().verify(token)
    # the claim is ignored nowhere: no principal exists for it, cached or not
    with pytest.raises(ClaimRefused):
        verifier().verify(token)


def test_expired_or_foreign_audience_service_tokens_are_refused() -> None:
    old = issue_service(DISPATCH, service="dispatch", now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(Unauthenticated, match="expired"):
        verifier().verify(old)
    foreign = issue_service(DISPATCH, service="dispatch", audience="another-api")
    with pytest.raises(Unauthenticated, match="Audience"):
        verifier().verify(foreign)


def test_pem_round_trip_and_wrong_curves(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(private_pem(DISPATCH))
    assert load_private_key(path).private_numbers() == DISPATCH.private_numbers()
    pub = tmp_path / "k.pub"
    pub.write_bytes(public_pem(DISPATCH.public_key()))
    assert load_public_key(pub).public_numbers() == DISPATCH.public_key().public_numbers()
    p384 = ec.generate_private_key(ec.SECP384R1())
    path.write_bytes(private_pem(p384))
    with pytest.raises(ValueError, match="P-256"):
        load_private_key(path)
    pub.write_bytes(public_pem(p384.public_key()))
    with pytest.raises(ValueError, match="P-256"):
        load_public_key(pub)
    pub.write_text("not a key")
    with pytest.raises(ValueError, match="not a PEM public key"):
        load_public_key(pub)


def test_parse_service_keys() -> None:
    assert parse_service_keys(" dispatch=/k/d.pub , intake=rel/i.pub,") == {
        "dispatch": Path("/k/d.pub"),
        "intake": Path("rel/i.pub"),
    }
    assert parse_service_keys("") == {}
    for bad in ("dispatch", "dispatch=", "Dis patch=/x", "a=/x,a=/y"):
        with pytest.raises(ValueError):
            parse_service_keys(bad)


def test_local_key_pair_is_created_once_private_0600(tmp_path: Path) -> None:
    private = tmp_path / "state" / "dispatch-casefile.key"
    public = local_key_pair(private)
    assert public == tmp_path / "state" / "dispatch-casefile.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    first = private.read_bytes()
    assert local_key_pair(private) == public and private.read_bytes() == first
    key = load_private_key(private)
    assert load_public_key(public).public_numbers() == key.public_key().public_numbers()
    # a lost public half is derived again from the private key
    public.unlink()
    local_key_pair(private)
    assert load_public_key(public).public_numbers() == key.public_key().public_numbers()
    assert [p.name for p in sorted(private.parent.iterdir())] == [
        "dispatch-casefile.key",
        "dispatch-casefile.pub",
    ]  # no temporary files left behind


def test_a_creator_that_loses_the_race_takes_the_winners_key(tmp_path: Path) -> None:
    private = tmp_path / "dispatch-casefile.key"
    winner = new_private_key()

    def generate_while_another_process_wins() -> ec.EllipticCurvePrivateKey:
        # the other creator puts its key in place after our exists() check
        private.write_bytes(private_pem(winner))
        return new_private_key()

    public = local_key_pair(private, generate=generate_while_another_process_wins)
    assert load_private_key(private).private_numbers() == winner.private_numbers()
    assert load_public_key(public).public_numbers() == winner.public_key().public_numbers()
    assert sorted(p.name for p in tmp_path.iterdir()) == [private.name, public.name]


def _create(args: tuple[str, Any]) -> bytes:
    path, barrier = args
    barrier.wait()
    local_key_pair(Path(path))
    return Path(path).read_bytes()


def test_two_processes_creating_at_once_get_one_key_pair(tmp_path: Path) -> None:
    private = tmp_path / "dispatch-casefile.key"
    ctx = multiprocessing.get_context("fork")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(2)
        with ctx.Pool(2) as pool:
            seen = pool.map(_create, [(str(private), barrier)] * 2)
    assert seen[0] == seen[1] == private.read_bytes()
    key = load_private_key(private)
    public = load_public_key(public_path_of(private))
    assert public.public_numbers() == key.public_key().public_numbers()
    assert sorted(p.name for p in tmp_path.iterdir()) == [private.name, "dispatch-casefile.pub"]


def test_write_key_pair_never_replaces_a_key(tmp_path: Path) -> None:
    private, public = write_key_pair(tmp_path / "keys", "dispatch")
    assert (private.name, public.name) == ("dispatch.key", "dispatch.pub")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    token = issue_service(load_private_key(private), service="dispatch")
    config = AuthConfig(service_keys={"dispatch": load_public_key(public)})
    assert TokenVerifier(config).verify(token).roles == {Role.SERVICE}
    before = private.read_bytes()
    with pytest.raises(FileExistsError):
        write_key_pair(tmp_path / "keys", "dispatch")
    assert private.read_bytes() == before
    with pytest.raises(ValueError):
        write_key_pair(tmp_path / "keys", "../etc")


def test_cli_service_key_prints_each_sides_settings(tmp_path: Path) -> None:
    from casefile.entrypoints.cli import tokens_app

    runner = CliRunner()
    result = runner.invoke(tokens_app, ["service-key", "dispatch", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"LIANDONG_CASEFILE_SERVICE_KEYS=dispatch={tmp_path}/dispatch.pub" in result.stdout
    assert f"LIANDONG_DISPATCH_CASEFILE_KEY={tmp_path}/dispatch.key" in result.stdout
    again = runner.invoke(tokens_app, ["service-key", "dispatch", "--out", str(tmp_path)])
    assert again.exit_code == 2
    helped = runner.invoke(tokens_app, ["service-key", "--help"])
    assert "ES256" in helped.stdout and "--out" in helped.stdout


def test_service_keys_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from casefile import config

    monkeypatch.setattr(config, "ROOT", tmp_path)
    monkeypatch.delenv("LIANDONG_CASEFILE_SERVICE_KEYS", raising=False)
    keys = config.service_keys()  # the embedded default: created on first use
    embedded = load_private_key(tmp_path / ".state" / "dispatch-casefile.key")
    assert list(keys) == ["dispatch"]
    assert keys["dispatch"].public_numbers() == embedded.public_key().public_numbers()
    _, public = write_key_pair(tmp_path / "keys", "intake")
    monkeypatch.setenv("LIANDONG_CASEFILE_SERVICE_KEYS", f"intake={public}")
    assert list(config.service_keys()) == ["intake"]
    monkeypatch.setenv("LIANDONG_CASEFILE_SERVICE_KEYS", "")
    assert config.service_keys() == {}
    monkeypatch.setenv("LIANDONG_CASEFILE_SERVICE_KEYS", f"intake={tmp_path / 'missing.pub'}")
    with pytest.raises(FileNotFoundError):
        config.service_keys()
