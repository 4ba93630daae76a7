"""Casefile settings beyond liandong.settings.Settings, read from the environment.

LIANDONG_CASEFILE_AUTH      required | off (default required). off: a call without a token is
                            taken as a read-only platform operator (a warning at start);
                            a write always needs a verified token, in every mode.
LIANDONG_JWT_KEY            HS256 key; else LIANDONG_JWKS_URL; else the local key file
LIANDONG_JWT_KEY_FILE       (default <db folder or .state>/casefile-jwt.key, created once)
LIANDONG_JWKS_URL           OIDC provider's JWKS URL (PyJWKClient)
LIANDONG_JWT_ISSUER / _AUDIENCE   expected iss / aud ("" disables the check)
LIANDONG_CASEFILE_TRUSTED_SERVICES   comma list of service subjects whose HS256/JWKS tokens
                            with role service count (legacy; default dispatch); a service with
                            a key below is trusted only under that key
LIANDONG_CASEFILE_SERVICE_KEYS  comma list of name=path/to/public.pem (ES256, EC P-256), a
                            service's own public key; unset: dispatch=<the embedded key pair
                            under .state, created on first use>; "" or "none": no service keys
LIANDONG_CASEFILE_CLOCK_INTERVAL     seconds between clock-breach checks (default 60)
LIANDONG_CASEFILE_HOLIDAYS / _MAKEUP_WORKDAYS   comma lists of YYYY-MM-DD for the calendar
LIANDONG_CASEFILE_OUTBOX    on | off: publish casefile.events (default on)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from casefile.domain.workdays import WorkCalendar
from liandong.settings import ROOT, Settings
from liandong.tokens.claims import AUDIENCE, ISSUER
from liandong.tokens.keys import (
    embedded_service_key,
    load_public_key,
    local_key_pair,
    parse_service_keys,
)
from liandong.tokens.operator import people_key_file, people_signing_key
from liandong.tokens.verifying import AuthConfig


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _dates(text: str) -> list[date]:
    return [date.fromisoformat(p.strip()) for p in text.split(",") if p.strip()]


def key_file() -> Path:
    return people_key_file()


def signing_key() -> str:
    """The HS256 key: LIANDONG_JWT_KEY or the local key file (created on first use)."""
    return people_signing_key()


def service_keys() -> dict[str, ec.EllipticCurvePublicKey]:
    """LIANDONG_CASEFILE_SERVICE_KEYS, loaded; unset: the embedded dispatch key pair (created
    here if dispatch has not yet, so the two may start in any order)."""
    text = os.environ.get("LIANDONG_CASEFILE_SERVICE_KEYS")
    if text is None:
        paths = {"dispatch": local_key_pair(embedded_service_key("dispatch", ROOT))}
        logging.getLogger(__name__).warning(
            "LIANDONG_CASEFILE_SERVICE_KEYS unset: trusting the embedded dispatch key %s "
            "(one machine only; elsewhere use `liandong tokens service-key`)",
            paths["dispatch"],
        )
    elif text.strip().lower() in ("", "none"):
        paths = {}
    else:
        paths = parse_service_keys(text)
    return {name: load_public_key(path) for name, path in paths.items()}


def auth_config() -> AuthConfig:
    mode = _env("LIANDONG_CASEFILE_AUTH", "required").strip().lower()
    if mode not in ("required", "off"):
        raise ValueError(f"LIANDONG_CASEFILE_AUTH must be required or off, not {mode!r}")
    jwks = _env("LIANDONG_JWKS_URL") or None
    services = _env("LIANDONG_CASEFILE_TRUSTED_SERVICES", "dispatch")
    return AuthConfig(
        required=mode == "required",
        hs_key=None if jwks else signing_key(),
        jwks_url=jwks,
        issuer=_env("LIANDONG_JWT_ISSUER", ISSUER) or None,
        audience=_env("LIANDONG_JWT_AUDIENCE", AUDIENCE) or None,
        trusted_services=frozenset(s.strip() for s in services.split(",") if s.strip()),
        service_keys=service_keys(),
    )


def calendar() -> WorkCalendar:
    return WorkCalendar.of(
        _dates(_env("LIANDONG_CASEFILE_HOLIDAYS")),
        _dates(_env("LIANDONG_CASEFILE_MAKEUP_WORKDAYS")),
    )


@dataclass(frozen=True)
class CasefileConfig:
    auth: AuthConfig
    calendar: WorkCalendar
    clock_interval_s: float
    outbox: bool

    @classmethod
    def from_env(cls, settings: Settings | None = None) -> CasefileConfig:
        _ = settings
        return cls(
            auth=auth_config(),
            calendar=calendar(),
            clock_interval_s=float(_env("LIANDONG_CASEFILE_CLOCK_INTERVAL", "60")),
            outbox=_env("LIANDONG_CASEFILE_OUTBOX", "on").lower() != "off",
        )
