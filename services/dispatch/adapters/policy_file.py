"""The dispatch policy from its YAML file (LIANDONG_DISPATCH_POLICY)."""

from __future__ import annotations

from pathlib import Path

import yaml

from dispatch.domain.policy import DispatchPolicy, policy_from_dict

DEFAULT_POLICY_FILE = Path(__file__).resolve().parents[3] / "deploy" / "dispatch" / "policy.yaml"


def load_policy(path: str | Path = DEFAULT_POLICY_FILE) -> DispatchPolicy:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a dispatch policy must be a mapping")
    return policy_from_dict(raw)
