"""What a casefile bearer token says, and who that makes the caller. Pure: no keys, no JWT.

Claims: `sub` (person id, or a service name), `roles` (list) or `role` (one), `jurisdiction`
(list or comma-separated county code prefixes), `exp`, `iss`, `aud`. Role names are the
domain's (ENFORCEMENT_OFFICER, MONITORING_STAFF, MANAGER, ADMIN; short forms officer,
monitoring, manager, admin are accepted) plus `service` for a trusted service such as
dispatch (role SERVICE: intake, team changes and reads, no legal act in its own name).

A trusted service passes on a person's field record with an `act` claim naming that person:
`{"sub": "dispatch", "roles": ["service"], "act": {"sub": "o1", "roles": ["officer"]}}`.
RFC 8693 spells delegation with the delegate in `act`; here the token's own subject stays
the authenticated caller (the service) and `act` names the person it acts for, so that
nothing signed for the service can pass as the person's own token.

A token verified with a service's own key (see `verifying`) yields role SERVICE and nothing
else: `sub` must equal the service, `roles` must be `["service"]`, and an `act` may name the
person only as officer or monitoring staff (`service_principal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError

ISSUER = "liandong"
AUDIENCE = "liandong-casefile"
SERVICE_ROLE = "service"


class Role(StrEnum):
    ENFORCEMENT_OFFICER = "ENFORCEMENT_OFFICER"
    MONITORING_STAFF = "MONITORING_STAFF"
    MANAGER = "MANAGER"
    ADMIN = "ADMIN"
    SERVICE = "SERVICE"


_ALIASES = {
    "officer": Role.ENFORCEMENT_OFFICER,
    "enforcement": Role.ENFORCEMENT_OFFICER,
    "enforcement_officer": Role.ENFORCEMENT_OFFICER,
    "monitoring": Role.MONITORING_STAFF,
    "monitoring_staff": Role.MONITORING_STAFF,
    "manager": Role.MANAGER,
    "admin": Role.ADMIN,
}
# what a service may say about the person it acts for (a manager: alone, and casefile allows
# it reads only: casefile.domain.access.MANAGER_READS)
_ACT_ROLES = frozenset({Role.ENFORCEMENT_OFFICER, Role.MONITORING_STAFF, Role.MANAGER})


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[Role]
    jurisdictions: tuple[str, ...] = ()
    on_behalf_of: Principal | None = None  # the person a service acts for (token `act`)

    @property
    def actor(self) -> str:
        """Who did it in the world: the person acted for, else the caller."""
        return self.on_behalf_of.subject if self.on_behalf_of is not None else self.subject

    @property
    def key(self) -> str:
        """Both identities, for idempotency records ("dispatch>o1")."""
        return self.subject + (f">{self.actor}" if self.on_behalf_of is not None else "")


class Unauthenticated(Exception):
    """No usable bearer token (missing, malformed, expired, wrong signature or audience)."""


class ClaimRefused(Unauthenticated):
    """A validly signed service token claiming more than its key may: a sign of a stolen key
    or a broken service, logged as a warning."""


def role_of(name: str) -> Role | None:
    try:
        return Role(name.upper())
    except ValueError:
        return _ALIASES.get(name.lower())


def service_principal(claims: dict[str, Any], service: str) -> Principal:
    """The principal of a token verified with `service`'s own key: role SERVICE only, acting
    at most for an officer or monitoring staff. Over-claims raise ClaimRefused."""
    claims = checked_shape(claims)
    if claims.get("sub") != service:
        raise ClaimRefused(f"token signed with {service}'s key names sub {claims.get('sub')!r}")
    raw = claims.get("roles", claims.get("role", []))
    names = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else [raw]
    if [str(n).lower() for n in names] != [SERVICE_ROLE]:
        raise ClaimRefused(f"{service}'s token may claim role service only, not {raw!r}")
    act = claims.get("act")
    on_behalf = None
    if act is not None:
        if not isinstance(act, dict):
            raise Unauthenticated("act claim must be an object")
        if "act" in act:
            raise ClaimRefused(f"{service} acts for one person; acts do not nest")
        person_raw = act.get("roles", act.get("role", []))
        person_names = [person_raw] if isinstance(person_raw, str) else person_raw
        if not isinstance(person_names, list):
            raise Unauthenticated("act roles must be a list")
        acted = set()
        for name in person_names:
            if not isinstance(name, str):
                continue
            role = role_of(name)
            if name.lower() == SERVICE_ROLE or (role is not None and role not in _ACT_ROLES):
                raise ClaimRefused(
                    f"{service} may act only for officers and monitoring staff, not as {name!r}"
                )
            acted.add(role)
        if Role.MANAGER in acted and len(acted) > 1:
            # a manager is acted for only to read (a console); never mixed with a field role
            raise ClaimRefused(
                f"{service} may act only for officers and monitoring staff, or for a manager "
                f"alone, not as {person_names!r}"
            )
        on_behalf = principal_from_claims(act, frozenset(), nested=True)
    return Principal(service, frozenset({Role.SERVICE}), (), on_behalf)


_Names = StrictStr | list[StrictStr] | None


class ClaimShape(BaseModel):
    """The types a casefile token's claims must have (a validly signed token with a number
    for `jurisdiction` or a list for `sub` is refused with the reason, never a crash)."""

    model_config = ConfigDict(extra="allow")

    sub: StrictStr | None = None
    roles: _Names = None
    role: _Names = None
    jurisdiction: _Names = None
    act: dict[str, Any] | None = None


def checked_shape(claims: Any, what: str = "token") -> dict[str, Any]:
    """`claims` if they have the shape of ClaimShape, else Unauthenticated with the reason."""
    if not isinstance(claims, dict):
        raise Unauthenticated(f"{what} claims must be a JSON object")
    try:
        ClaimShape.model_validate(claims)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"][:1]) or "claims"
        raise Unauthenticated(
            f"{what} claim {where!r} has the wrong type: {first['msg']}"
        ) from None
    return claims


def principal_from_claims(
    claims: dict[str, Any], trusted_services: frozenset[str], *, nested: bool = False
) -> Principal:
    claims = checked_shape(claims, "act" if nested else "token")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Unauthenticated("token has no subject" if not nested else "act claim has no sub")
    act = claims.get("act")
    on_behalf = None
    if act is not None and not nested:
        if not isinstance(act, dict):
            raise Unauthenticated("act claim must be an object")
        # the person's roles are as the service states them; never a service role
        on_behalf = principal_from_claims(act, frozenset(), nested=True)
    raw = claims.get("roles", claims.get("role", []))
    names = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, list) else []
    roles: set[Role] = set()
    for name in names:
        if not isinstance(name, str):
            continue
        if name.lower() == SERVICE_ROLE:
            if sub in trusted_services:
                roles.add(Role.SERVICE)
            continue
        role = role_of(name)
        if role is not None:
            roles.add(role)
    places = claims.get("jurisdiction", [])
    if isinstance(places, str):
        places = [p.strip() for p in places.split(",")]
    codes = tuple(p for p in places if isinstance(p, str) and p)
    return Principal(sub, frozenset(roles), codes, on_behalf)
