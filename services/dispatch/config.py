"""Dispatch-only settings from the environment (shared ones live in liandong.settings)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dispatch.adapters.oidc import OidcConfig
from dispatch.adapters.policy_file import DEFAULT_POLICY_FILE
from liandong.tokens.phone import signing_key

# the repository's web build (make install runs `npm ci` and `npm run build` in web/)
DEFAULT_WEB_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class DispatchConfig:
    policy_file: str = field(
        default_factory=lambda: _env("LIANDONG_DISPATCH_POLICY", str(DEFAULT_POLICY_FILE))
    )
    # LIANDONG_DISPATCH_JWT_KEY, else a key generated under .state (tokens.signing_key)
    jwt_key: str = field(default_factory=signing_key)
    tick_seconds: float = field(
        default_factory=lambda: float(_env("LIANDONG_DISPATCH_TICK_SECONDS", "5"))
    )
    # None: "<topic prefix>liandong-dispatch"
    consumer_group: str | None = field(
        default_factory=lambda: os.environ.get("LIANDONG_DISPATCH_GROUP") or None
    )
    # static group membership (KIP-345): a stable name per replica (a StatefulSet pod's), so a
    # restarted replica takes its partitions back at once instead of waiting out the dead
    # one's session; two live replicas must never share it. None: dynamic membership.
    group_instance_id: str | None = field(
        default_factory=lambda: os.environ.get("LIANDONG_DISPATCH_GROUP_INSTANCE_ID") or None
    )
    timezone: str = field(default_factory=lambda: _env("LIANDONG_TIMEZONE", "Asia/Shanghai"))
    # partial evidence uploads from phones (entrypoints/evidence_api), bounded
    uploads_dir: Path = field(
        default_factory=lambda: Path(
            _env(
                "LIANDONG_DISPATCH_UPLOADS", str(DEFAULT_WEB_DIST.parents[1] / ".state" / "uploads")
            )
        )
    )
    upload_max_bytes: int = field(
        default_factory=lambda: int(_env("LIANDONG_DISPATCH_UPLOAD_MAX_BYTES", str(1024 * 2**20)))
    )
    upload_quota_bytes: int = field(
        default_factory=lambda: int(_env("LIANDONG_DISPATCH_UPLOAD_QUOTA_BYTES", str(4 * 2**30)))
    )
    # the built front ends served beside the API
    web_dist: Path = field(
        default_factory=lambda: Path(_env("LIANDONG_WEB_DIST", str(DEFAULT_WEB_DIST)))
    )
    # sign-in through an OpenID Connect provider (LIANDONG_OIDC_*); None: embedded passwords
    oidc: OidcConfig | None = field(default_factory=OidcConfig.from_env)
