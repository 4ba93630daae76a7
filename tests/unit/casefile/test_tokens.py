"""Bearer tokens: issue and verify with a local key, role and jurisdiction claims."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from liandong.tokens.claims import Role, Unauthenticated, principal_from_claims
from liandong.tokens.issuing import issue
from liandong.tokens.verifying import AuthConfig, TokenVerifier

KEY = "unit-test-key-0123456789abcdef0123"
VERIFIER = TokenVerifier(AuthConfig(hs_key=KEY))


def test_issued_token_names_subject_roles_and_jurisdiction() -> None:
    token = issue(KEY, sub="mgr", roles=["manager", "officer"], jurisdictions=["3205", "3201"])
    p = VERIFIER.verify(token)
    assert p.subject == "mgr"
    assert p.roles == frozenset({Role.MANAGER, Role.ENFORCEMENT_OFFICER})
    assert p.jurisdictions == ("3205", "3201")


def test_expired_wrong_key_and_wrong_audience_are_refused() -> None:
    old = issue(KEY, sub="o1", roles=["officer"], now=datetime.now(UTC) - timedelta(days=2))
    with pytest.raises(Unauthenticated, match="expired"):
        VERIFIER.verify(old)
    other = issue("another-key-0123456789abcdef0123456", sub="o1", roles=["officer"])
    with pytest.raises(Unauthenticated, match="Signature"):
        VERIFIER.verify(other)
    foreign = issue(KEY, sub="o1", roles=["officer"], audience="someone-else")
    with pytest.raises(Unauthenticated, match="Audience"):
        VERIFIER.verify(foreign)
    unsigned = jwt.encode({"sub": "o1", "exp": 9999999999}, None, algorithm="none")
    with pytest.raises(Unauthenticated):
        VERIFIER.verify(unsigned)


def test_service_role_only_for_trusted_services() -> None:
    trusted = frozenset({"dispatch"})
    assert principal_from_claims({"sub": "dispatch", "role": "service"}, trusted).roles == {
        Role.SERVICE
    }
    assert principal_from_claims({"sub": "mallory", "role": "service"}, trusted).roles == set()


def test_claim_shapes() -> None:
    p = principal_from_claims(
        {"sub": "m1", "roles": ["MONITORING_STAFF", "pilot"], "jurisdiction": "3205, 3301"},
        frozenset(),
    )
    assert p.roles == {Role.MONITORING_STAFF} and p.jurisdictions == ("3205", "3301")
    with pytest.raises(Unauthenticated):
        principal_from_claims({"roles": ["admin"]}, frozenset())


def test_act_claim_names_the_person_a_service_acts_for() -> None:
    trusted = frozenset({"dispatch"})
    token = issue(KEY, sub="dispatch", roles=["service"], act={"sub": "o1", "roles": ["officer"]})
    p = VERIFIER.verify(token)
    assert (p.subject, p.roles) == ("dispatch", {Role.SERVICE})
    assert p.on_behalf_of is not None
    assert (p.on_behalf_of.subject, p.on_behalf_of.roles) == ("o1", {Role.ENFORCEMENT_OFFICER})
    # the person acted for never gets a service role, and acts do not nest
    nested = principal_from_claims(
        {"sub": "dispatch", "roles": ["service"],
         "act": {"sub": "dispatch", "roles": ["service"], "act": {"sub": "boss"}}},
        trusted,
    )  # fmt: skip
    assert nested.on_behalf_of is not None
    assert nested.on_behalf_of.roles == set() and nested.on_behalf_of.on_behalf_of is None
    with pytest.raises(Unauthenticated):
        principal_from_claims({"sub": "dispatch", "act": "o1"}, trusted)
    with pytest.raises(Unauthenticated):
        principal_from_claims({"sub": "dispatch", "act": {"roles": ["officer"]}}, trusted)


class FakeClock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.at


def test_a_remembered_token_still_expires_and_is_rechecked() -> None:
    clock = FakeClock()
    verifier = TokenVerifier(AuthConfig(hs_key=KEY), recheck_s=60, clock=clock)
    token = issue(KEY, sub="o1", roles=["officer"], ttl=timedelta(hours=1))
    assert verifier.verify(token).subject == "o1"
    clock.at += 30  # remembered: no new signature check needed
    assert verifier.verify(token).subject == "o1"
    clock.at += 3600  # past the token's exp: refused although remembered
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(token)


def test_a_remembered_token_is_verified_again_after_the_recheck_interval() -> None:
    clock = FakeClock()
    config = AuthConfig(hs_key=KEY)
    verifier = TokenVerifier(config, recheck_s=60, clock=clock)
    token = issue(KEY, sub="o1", roles=["officer"])
    verifier.verify(token)
    # the key is rotated: within the interval the remembered result stands, after it the
    # signature is checked again and fails
    verifier.config = AuthConfig(hs_key="rotated-key-0123456789abcdef012345")
    assert verifier.verify(token).subject == "o1"
    clock.at += 61
    with pytest.raises(Unauthenticated, match="Signature"):
        verifier.verify(token)


def test_a_refused_token_is_not_remembered() -> None:
    verifier = TokenVerifier(AuthConfig(hs_key=KEY))
    other = issue("another-key-0123456789abcdef0123456", sub="o1", roles=["officer"])
    for _ in range(2):
        with pytest.raises(Unauthenticated, match="Signature"):
            verifier.verify(other)
