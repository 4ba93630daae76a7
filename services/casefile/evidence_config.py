"""Evidence store settings, read from the environment.

LIANDONG_EVIDENCE_STORE     where evidence bytes live: a folder (or file:///folder; default
                            .state/evidence) or s3://bucket[/prefix] (then
                            LIANDONG_EVIDENCE_S3_ENDPOINT, AWS_ACCESS_KEY_ID,
                            AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, and
                            LIANDONG_EVIDENCE_S3_LOCK_DAYS > 0 for object-lock retention)
LIANDONG_EVIDENCE_LIMITS    size limits per media type, e.g. image/*=40MB,video/*=1GB
                            (defaults in domain/evidence.DEFAULT_LIMITS; other types 100MB)
LIANDONG_EVIDENCE_TIME_TOLERANCE_S      EXIF capture time vs the phone's (default 300)
LIANDONG_EVIDENCE_POSITION_TOLERANCE_M  EXIF position vs the phone's (default 200)
LIANDONG_TIMEZONE           zone of EXIF times that carry no offset (default Asia/Shanghai)
LIANDONG_CASEFILE_BUNDLE_KEY  Ed25519 private key signing exported bundles (default
                            .state/casefile-bundle.key, created 0600 with its .pub on first use)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from casefile.domain.evidence import DEFAULT_LIMITS, SizeLimits, Tolerance
from liandong.settings import ROOT

STATE = ROOT / ".state"


@dataclass(frozen=True)
class EvidenceConfig:
    store_url: str
    limits: SizeLimits
    tolerance: Tolerance
    zone: ZoneInfo

    @classmethod
    def from_env(cls) -> EvidenceConfig:
        text = os.environ.get("LIANDONG_EVIDENCE_LIMITS", "")
        limits = DEFAULT_LIMITS
        if text.strip():
            parsed = SizeLimits.parse(text, DEFAULT_LIMITS.default)
            limits = SizeLimits(DEFAULT_LIMITS.limits + parsed.limits, parsed.default)
            # later entries win: dict(limits) keeps the last value of a repeated type
        return cls(
            store_url=os.environ.get("LIANDONG_EVIDENCE_STORE") or str(STATE / "evidence"),
            limits=limits,
            tolerance=Tolerance(
                seconds=float(os.environ.get("LIANDONG_EVIDENCE_TIME_TOLERANCE_S", "300")),
                metres=float(os.environ.get("LIANDONG_EVIDENCE_POSITION_TOLERANCE_M", "200")),
            ),
            zone=ZoneInfo(os.environ.get("LIANDONG_TIMEZONE", "Asia/Shanghai")),
        )


def bundle_key_path() -> Path:
    return Path(os.environ.get("LIANDONG_CASEFILE_BUNDLE_KEY") or STATE / "casefile-bundle.key")
