"""Signing in to the phone and web apps (embedded default, no outside service).

POST /v1/auth/token exchanges a roster person's id and password (argon2 hash set with
`liandong people set-password ID`) for a short-lived access token (the phone API's bearer
JWT, 15 minutes) and a refresh token (30 days, rotated on every use). POST /v1/auth/refresh
spends a refresh token for a new pair; POST /v1/auth/revoke signs out. GET /v1/me says who
the token is for and the app's settings for them. GET /v1/auth/methods tells the apps whether
an OpenID Connect provider signs people in instead (entrypoints/oidc_api)."""

# no `from __future__ import annotations`: the routes' caller dependency is a local type
# FastAPI must see evaluated

import asyncio
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from dispatch.adapters.credentials import CredentialStore, RefreshRefused
from dispatch.adapters.oidc import OidcConfig
from dispatch.domain.roster import Person, Role
from liandong.tokens.phone import Principal, issue

ACCESS_TTL = timedelta(minutes=15)


def photo_max_bytes() -> int:
    """The field app's photo cap (LIANDONG_FIELD_PHOTO_MAX_BYTES, default 20 MiB): a larger
    photo is kept scaled to 2000 px, not as its original."""
    return int(os.environ.get("LIANDONG_FIELD_PHOTO_MAX_BYTES", str(20 * 1024 * 1024)))


# which of a person's roster roles a sign-in gets when the app names none: field roles first
_DEFAULT_ROLE_ORDER = (Role.ENFORCEMENT, Role.MONITORING, Role.OPERATIONS, Role.DUTY_MANAGER)


class SignInBody(BaseModel):
    person_id: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)
    role: str | None = Field(
        None, description="one of the person's roster roles (the console asks for DUTY_MANAGER)"
    )


class RefreshBody(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=400)


class PersonView(BaseModel):
    person_id: str
    name: str
    role: str
    jurisdiction: list[str]


class TokenAnswer(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds the access token is valid")
    refresh_token: str
    person: PersonView


class MeView(PersonView):
    photo_max_bytes: int = Field(description="larger photos are scaled before they are kept")


class OidcMethod(BaseModel):
    name: str = Field(description="the provider's name for the button (may be empty)")
    start: str = Field(description="where the browser goes to sign in (a redirect)")


class SignInMethods(BaseModel):
    password: bool = Field(description="the person id + password form is on")
    oidc: OidcMethod | None = Field(description="the OpenID Connect provider, when configured")


def role_for(person: Person, wanted: str | None) -> Role:
    if wanted:
        name = wanted.strip().upper()
        role = Role.DUTY_MANAGER if name == "MANAGER" else Role(name)
        if role not in person.roles:
            raise HTTPException(403, f"{person.id} does not hold the role {role.value}")
        return role
    for role in _DEFAULT_ROLE_ORDER:
        if role in person.roles:
            return role
    raise HTTPException(403, f"{person.id} holds no role")


def token_answer(person: Person, role: Role, refresh_token: str, key: str | None) -> TokenAnswer:
    """The pair every sign-in ends with (password or OpenID Connect): a 15-minute access token
    and the refresh token that renews it."""
    token = issue(person.id, role.value, list(person.jurisdiction), key=key, ttl=ACCESS_TTL)
    return TokenAnswer(
        access_token=token,
        expires_in=int(ACCESS_TTL.total_seconds()),
        refresh_token=refresh_token,
        person=PersonView(
            person_id=person.id,
            name=person.name,
            role=role.value,
            jurisdiction=list(person.jurisdiction),
        ),
    )


def auth_router(
    credentials: CredentialStore,
    roster_person: Callable[[str], Person | None],
    signing_key: Callable[[], str | None],
    caller: Callable[..., Principal],
    oidc: OidcConfig | None = None,
) -> APIRouter:
    """`oidc`: the OpenID provider when one is configured; then password sign-in answers 403
    unless the configuration keeps it."""
    router = APIRouter(tags=["sign-in"])
    password_on = oidc is None or oidc.keep_password

    def answer(person: Person, role: Role, refresh_token: str) -> TokenAnswer:
        return token_answer(person, role, refresh_token, signing_key())

    @router.get(
        "/v1/auth/methods",
        summary="How to sign in here: password, an OpenID Connect provider, or both",
    )
    async def methods() -> SignInMethods:
        if oidc is None:
            return SignInMethods(password=True, oidc=None)
        return SignInMethods(
            password=oidc.keep_password,
            oidc=OidcMethod(name=oidc.display_name, start="/v1/auth/oidc/start"),
        )

    @router.post(
        "/v1/auth/token",
        summary="Sign in with a person id and password",
        responses={
            401: {"description": "wrong person id or password"},
            403: {
                "description": "not on the roster, the role asked for is not theirs, or "
                "password sign-in is off (an OpenID Connect provider signs people in)"
            },
            422: {"description": "malformed body or unknown role name"},
        },
    )
    async def sign_in(body: SignInBody) -> TokenAnswer:
        if not password_on:
            raise HTTPException(403, "password sign-in is off: sign in through OpenID Connect")
        ok = await asyncio.to_thread(credentials.check_password, body.person_id, body.password)
        if not ok:
            raise HTTPException(401, "wrong person id or password")
        person = roster_person(body.person_id)
        if person is None:
            raise HTTPException(403, f"{body.person_id} is not on the roster")
        try:
            role = role_for(person, body.role)
        except ValueError as e:
            raise HTTPException(422, f"unknown role {body.role!r}") from e
        refresh = await asyncio.to_thread(credentials.issue_refresh, person.id, role.value)
        return answer(person, role, refresh)

    @router.post(
        "/v1/auth/refresh",
        summary="A new access token (and a new refresh token) for a refresh token",
        responses={
            401: {"description": "unknown, expired, revoked or already used refresh token"},
            403: {"description": "the person left the roster or lost the role"},
            422: {"description": "malformed body"},
        },
    )
    async def refresh(body: RefreshBody) -> TokenAnswer:
        try:
            grant = await asyncio.to_thread(credentials.rotate, body.refresh_token)
        except RefreshRefused as e:
            raise HTTPException(401, str(e)) from e
        person = roster_person(grant.person_id)
        if person is None:
            await asyncio.to_thread(credentials.revoke, grant.token)
            raise HTTPException(403, f"{grant.person_id} is no longer on the roster")
        return answer(person, role_for(person, grant.role), grant.token)

    @router.post(
        "/v1/auth/revoke",
        status_code=204,
        summary="Sign out: the refresh token is revoked (access tokens run out within 15 min)",
        responses={422: {"description": "malformed body"}},
    )
    async def revoke(body: RefreshBody) -> None:
        await asyncio.to_thread(credentials.revoke, body.refresh_token)

    @router.get(
        "/v1/me",
        summary="Who I am, and the app's settings for me",
        responses={401: {"description": "no or invalid token"}},
    )
    async def me(p: Annotated[Principal, Depends(caller)]) -> MeView:
        person = roster_person(p.person_id)
        return MeView(
            person_id=p.person_id,
            name=person.name if person else "",
            role=p.role.value,
            jurisdiction=list(p.jurisdiction),
            photo_max_bytes=photo_max_bytes(),
        )

    return router
