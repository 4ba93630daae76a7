"""Reference data from the materialised registry (RegistryView) in the domain's terms."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dispatch.domain.marks import DataMark
from dispatch.domain.roster import Roster, person_from_dict

log = logging.getLogger(__name__)

Entities = Mapping[str, Mapping[str, Mapping[str, Any]]]

# The registry accepts "manager" as a synonym; the domain knows one manager role.
_ROLE_ALIASES = {"manager": "duty_manager"}
_NO_EXPIRY = "9999-12-31"


def _person_doc(raw: Mapping[str, Any]) -> dict[str, Any]:
    doc = dict(raw)
    doc["roles"] = [_ROLE_ALIASES.get(str(r).lower(), str(r)) for r in raw.get("roles") or ()]
    doc["certificates"] = [
        dict(c) | {"expires": c.get("expires") or _NO_EXPIRY} for c in raw.get("certificates") or ()
    ]
    return doc


def roster_from_entities(entities: Entities, timezone: str = "Asia/Shanghai") -> Roster:
    """Everyone in `registry.roster`; a person record the domain cannot read is left out and
    logged, so one bad entry never empties the roster."""
    people = []
    for pid in sorted(entities.get("person", {})):
        try:
            people.append(person_from_dict(_person_doc(entities["person"][pid])))
        except (KeyError, ValueError, TypeError):
            log.exception("roster entry %s skipped", pid)
    return Roster(tuple(people), timezone=timezone)


def marks_from_entities(entities: Entities) -> list[DataMark]:
    marks = []
    for mid, m in sorted(entities.get("mark", {}).items()):
        try:
            marks.append(
                DataMark(
                    mark_id=str(m.get("id") or mid),
                    outlet_id=str(m["outlet"]),
                    category=str(m.get("kind", "")),
                    start=datetime.fromisoformat(str(m["start"])),
                    end=datetime.fromisoformat(str(m["end"])),
                    factor=str(m["factor"]) if m.get("factor") else None,
                    approved=bool(m.get("approved", True)),
                )
            )
        except (KeyError, ValueError):
            log.exception("mark %s skipped", mid)
    return marks


class Reference:
    """Registry data as the dispatcher needs it, rebuilt lazily after a change.

    `entities` is the RegistryView's live mapping (kind -> id -> document); pass `changed`
    as the view's on_change callback. A roster is rebuilt once per burst of changes, not
    once per record, which matters while the view catches up on a large roster."""

    def __init__(self, entities: Entities | None = None, timezone: str = "Asia/Shanghai") -> None:
        self.entities: Entities = entities if entities is not None else {}
        self.timezone = timezone
        self.version = 0
        self._built = -1
        self._roster = Roster(())
        self._marks: list[DataMark] = []

    def changed(self, *_: object) -> None:
        self.version += 1

    def _rebuild(self) -> None:
        if self._built != self.version:
            self._roster = roster_from_entities(self.entities, self.timezone)
            self._marks = marks_from_entities(self.entities)
            self._built = self.version

    def roster(self) -> Roster:
        self._rebuild()
        return self._roster

    def marks(self) -> list[DataMark]:
        self._rebuild()
        return self._marks

    def outlet(self, outlet_id: str) -> Mapping[str, Any] | None:
        return self.entities.get("outlet", {}).get(outlet_id)

    def enterprise(self, enterprise_id: str) -> Mapping[str, Any] | None:
        return self.entities.get("enterprise", {}).get(enterprise_id)
