"""Validation of the registry YAML document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from liandong.registry.document import RegistryDocument, as_document

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "registry" / "demo.yaml"


def demo() -> dict[str, Any]:
    return yaml.safe_load(DEMO.read_text(encoding="utf-8"))


def test_demo_registry_is_valid_and_defaults_averaging() -> None:
    doc = RegistryDocument.model_validate(demo())
    kinds = [kind for kind, _, _ in doc.entities()]
    assert kinds.count("outlet") == 2 and kinds.count("person") == 5
    by_id = {o.id: o for o in doc.outlets}
    assert by_id["out-jn-power-1"].averaging == "hourly"
    assert by_id["out-jn-wwtp-1"].averaging == "daily"


def test_unknown_enterprise_and_duplicate_mn_are_named() -> None:
    raw = demo()
    raw["outlets"][0]["enterprise"] = "nope"
    raw["outlets"][1]["mn"] = raw["outlets"][0]["mn"]
    with pytest.raises(ValidationError) as err:
        RegistryDocument.model_validate(raw)
    text = str(err.value)
    assert "unknown enterprise nope" in text
    assert "already used by out-jn-power-1" in text


def test_bad_county_code_and_limit_without_bound_fail() -> None:
    raw = demo()
    raw["enterprises"][0]["county"] = "32011"
    with pytest.raises(ValidationError, match="county"):
        RegistryDocument.model_validate(raw)
    raw = demo()
    raw["outlets"][0]["limits"][0].pop("value")
    with pytest.raises(ValidationError, match="needs value"):
        RegistryDocument.model_validate(raw)


def test_mark_gets_a_stable_id_and_must_end_after_start() -> None:
    raw = demo()
    raw["marks"] = [
        {
            "outlet": "out-jn-power-1",
            "kind": "calibration",
            "start": "2026-11-01T08:00:00+08:00",
            "end": "2026-11-01T09:00:00+08:00",
        }
    ]
    doc = RegistryDocument.model_validate(raw)
    assert doc.marks[0].id == "out-jn-power-1:*:calibration:2026-11-01T08:00:00+08:00"
    raw["marks"][0]["end"] = raw["marks"][0]["start"]
    with pytest.raises(ValidationError, match="end must be after start"):
        RegistryDocument.model_validate(raw)


def test_as_document_round_trips_entities() -> None:
    doc = RegistryDocument.model_validate(demo())
    entities: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, entity_id, body in doc.entities():
        entities.setdefault(kind, {})[entity_id] = body
    again = RegistryDocument.model_validate(as_document(entities))
    assert again.entities() == doc.entities()
