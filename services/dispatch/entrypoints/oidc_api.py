"""Signing in through an OpenID Connect provider (when LIANDONG_OIDC_ISSUER is configured).

1. GET /v1/auth/oidc/start?app=field|console: a new sign-in (state, nonce, PKCE verifier kept
   in dispatch's database, only the state in an HttpOnly cookie that binds it to this browser)
   and a redirect to the provider's authorization endpoint with the S256 challenge.
2. The provider signs the person in and sends the browser to GET /v1/auth/oidc/callback with
   a code. Dispatch checks the state against the cookie, redeems the code with the verifier,
   checks the ID token (adapters/oidc), maps the configured claim to a roster person and sends
   the browser back to the app with a one-time code in the URL fragment (never sent to a
   server, kept in no log); refusals are a small page that says why, in Chinese and English.
3. The app POSTs that code to /v1/auth/oidc/exchange for Liandong's own access and refresh
   tokens, the same pair password sign-in gives; refreshing works as it does for a password.
"""

# no `from __future__ import annotations`: FastAPI must see the routes' types evaluated

import asyncio
import html
import secrets
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Cookie, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from dispatch.adapters.credentials import CredentialStore, PendingSignIn
from dispatch.adapters.oidc import OidcClient, Pending, ProviderUnavailable, SignInRefused
from dispatch.domain.roster import Person, Role
from dispatch.entrypoints.auth_api import TokenAnswer, role_for, token_answer

COOKIE = "liandong_oidc_state"
COOKIE_PATH = "/v1/auth/oidc"
# where each app lives, and the role it asks for (the console is the duty managers')
APPS: dict[str, tuple[str, str | None]] = {
    "field": ("/", None),
    "console": ("/console/", Role.DUTY_MANAGER.value),
}


class HandoffBody(BaseModel):
    code: str = Field(min_length=1, max_length=200)


def _html(description: str) -> dict[str, object]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def refusal(status: int, zh: str, en: str, back: str = "/", *, spent: bool = True) -> HTMLResponse:
    """A page a person can read (they arrive here in the browser, not through the app)."""
    body = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>登录未完成 / Sign-in not completed</title></head><body>"
        f'<main class="signin-refused"><h1>登录未完成</h1><p role="alert">{html.escape(zh)}</p>'
        f'<p lang="en">Sign-in not completed: {html.escape(en)}</p>'
        f'<p><a href="{html.escape(back)}">返回登录 / Back to sign-in</a></p></main></body></html>'
    )
    response = HTMLResponse(body, status_code=status)
    if spent:  # the sign-in is over; a forged callback must not end the browser's real one
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


def oidc_router(
    client: OidcClient,
    credentials: CredentialStore,
    roster_person: Callable[[str], Person | None],
    signing_key: Callable[[], str | None],
) -> APIRouter:
    router = APIRouter(tags=["sign-in"])
    config = client.config

    def callback_url(request: Request) -> str:
        return config.redirect_uri or str(request.url_for("oidc_callback"))

    @router.get(
        "/v1/auth/oidc/start",
        summary="Sign in through the OpenID Connect provider: a redirect to it",
        response_class=RedirectResponse,
        response_model=None,
        status_code=302,
        responses={
            302: {
                "description": "to the provider's sign-in page (authorization code, PKCE S256)",
                "headers": {
                    "Location": {"schema": {"type": "string"}},
                    "Set-Cookie": {"schema": {"type": "string"}},
                },
            },
            422: {"description": "unknown app"},
            502: _html("the provider cannot be reached or its discovery document is not OIDC"),
        },
    )
    async def start(
        request: Request,
        app: Annotated[
            Literal["field", "console"], Query(description="the app to return to")
        ] = "field",
    ) -> RedirectResponse | HTMLResponse:
        pending = Pending.new()
        try:
            where = await client.authorization_url(pending, callback_url(request))
        except ProviderUnavailable as e:
            return refusal(502, "统一身份认证服务暂时无法访问。", str(e), APPS[app][0])
        sign_in = PendingSignIn(pending.nonce, pending.verifier, app, APPS[app][1])
        await asyncio.to_thread(credentials.keep_pending, pending.state, sign_in)
        response = RedirectResponse(where, status_code=302)
        # Lax: the cookie comes back on the provider's top-level redirect, never on a
        # cross-site POST or sub-request
        response.set_cookie(
            COOKIE,
            pending.state,
            max_age=600,
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    @router.get(
        "/v1/auth/oidc/callback",
        name="oidc_callback",
        summary="Where the provider sends the browser back; on to the app with a one-time code",
        response_class=RedirectResponse,
        response_model=None,
        status_code=303,
        responses={
            303: {
                "description": "to the app, `#oidc=<one-time code>` for /v1/auth/oidc/exchange",
                "headers": {"Location": {"schema": {"type": "string"}}},
            },
            400: _html(
                "the provider answered an error or refused the code, or its ID token does not "
                "check out (signature, issuer, audience, expiry, nonce)"
            ),
            403: _html(
                "this browser started no sign-in with this state (no or another state cookie, "
                "expired, already finished), or the person is not on the roster or lacks the "
                "app's role"
            ),
            422: {"description": "a parameter too long"},
            502: _html("the provider cannot be reached or answered something unusable"),
        },
    )
    async def callback(
        request: Request,
        code: Annotated[str | None, Query(max_length=2000)] = None,
        state: Annotated[str | None, Query(max_length=200)] = None,
        error: Annotated[str | None, Query(max_length=200)] = None,
        error_description: Annotated[str | None, Query(max_length=2000)] = None,
        iss: Annotated[str | None, Query(max_length=2000)] = None,
        cookie: Annotated[
            str | None,
            Cookie(alias=COOKIE, max_length=200, description="set by /v1/auth/oidc/start"),
        ] = None,
    ) -> RedirectResponse | HTMLResponse:
        # the state must be the one this browser was given at start: a callback URL planted by
        # someone else (login CSRF) carries theirs
        # (as bytes: compare_digest refuses str with non-ASCII characters)
        if not state or not cookie or not secrets.compare_digest(state.encode(), cookie.encode()):
            return refusal(
                403,
                "这次登录不是从本浏览器发起的，或已过期。请重新登录。",
                "no sign-in started in this browser matches (state); start again",
                spent=False,
            )
        pending = await asyncio.to_thread(credentials.take_pending, state)
        if pending is None:
            return refusal(
                403, "登录已过期或已完成，请重新登录。", "sign-in expired or already finished"
            )
        back = APPS.get(pending.app, APPS["field"])[0]
        if error:
            return refusal(
                400,
                f"统一身份认证未通过：{error}",
                f"the provider answered {error}: {error_description or ''}",
                back,
            )
        # RFC 9207: a provider that names itself must be ours (mix-up defence)
        if iss is not None and iss.rstrip("/") != config.issuer:
            return refusal(400, "认证服务器不符。", f"answer from another issuer: {iss}", back)
        if not code:
            return refusal(400, "认证服务器没有返回授权码。", "no code in the answer", back)
        try:
            claims = await client.redeem(
                code, Pending(state, pending.nonce, pending.verifier), callback_url(request)
            )
        except SignInRefused as e:
            return refusal(400, "统一身份认证的结果无法验证，请重新登录。", str(e), back)
        except ProviderUnavailable as e:
            return refusal(502, "统一身份认证服务暂时无法访问。", str(e), back)
        person_id = claims.get(config.person_claim)
        if not isinstance(person_id, str) or not person_id:
            return refusal(
                403,
                f"认证结果中没有人员编号（{config.person_claim}）。",
                f"the provider sent no {config.person_claim} claim",
                back,
            )
        person = roster_person(person_id)
        if person is None:
            return refusal(
                403,
                f"{person_id} 不在人员名册中，请联系管理员。",
                f"{person_id} is not on the roster; ask an administrator",
                back,
            )
        try:
            role = role_for(person, pending.role)
        except HTTPException as e:
            return refusal(403, f"{person_id} 没有所需的角色。", str(e.detail), back)
        handoff = await asyncio.to_thread(credentials.issue_handoff, person.id, role.value)
        response = RedirectResponse(f"{back}#oidc={handoff}", status_code=303)
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
        return response

    @router.post(
        "/v1/auth/oidc/exchange",
        summary="The one-time code of an OpenID Connect sign-in for an access and refresh token",
        responses={
            401: {"description": "unknown, expired or already used code"},
            403: {"description": "the person left the roster or lost the role since"},
            422: {"description": "malformed body"},
        },
    )
    async def exchange(body: HandoffBody) -> TokenAnswer:
        found = await asyncio.to_thread(credentials.take_handoff, body.code)
        if found is None:
            raise HTTPException(401, "unknown, expired or already used sign-in code")
        person_id, role_name = found
        person = roster_person(person_id)
        if person is None:
            raise HTTPException(403, f"{person_id} is no longer on the roster")
        role = role_for(person, role_name)
        refresh = await asyncio.to_thread(credentials.issue_refresh, person.id, role.value)
        return token_answer(person, role, refresh, signing_key())

    return router
