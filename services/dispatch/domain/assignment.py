"""Joint-team assignment: who goes, and why.

For each role slot of the team, candidates come from the task's county first, then the
city, then the province (each widening is recorded). A candidate must hold the role, be on
duty (not marked off and on shift at `now`), hold a valid certificate of the slot's kind
when one is required, and not be excluded (people who declined or timed out on this task).

Ranking uses one documented score, in minutes (lower is better):

    score = travel_minutes + load_penalty_minutes * open_tasks

    travel_minutes = haversine_km * road_factor / average_speed_kmh * 60
                     (unknown_position_minutes when either position is unknown)

so with equal distance the less loaded person wins, and one extra open task costs as much
as `load_penalty_minutes` of extra driving. Scores are compared to 0.001 min and ties break
on person id, so the same input always yields the same team regardless of roster order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dispatch.domain.geo import haversine_km
from dispatch.domain.roster import Level, Person, Role, Roster, code_at
from dispatch.domain.routes import Priority, Route


@dataclass(frozen=True, slots=True)
class SlotSpec:
    role: Role
    count: int = 1
    certificate: str | None = None  # certificate kind required, None = no certificate needed


@dataclass(frozen=True, slots=True)
class SlotRequest:
    slot_id: str
    role: Role
    certificate: str | None = None


@dataclass(frozen=True, slots=True)
class TeamSpec:
    slots: tuple[SlotSpec, ...]

    def slot_requests(self) -> tuple[SlotRequest, ...]:
        """Stable slot ids: ENFORCEMENT#1, ENFORCEMENT#2, MONITORING#1 ..."""
        out: list[SlotRequest] = []
        seen: Counter[Role] = Counter()
        for spec in self.slots:
            for _ in range(spec.count):
                seen[spec.role] += 1
                out.append(
                    SlotRequest(f"{spec.role.value}#{seen[spec.role]}", spec.role, spec.certificate)
                )
        return tuple(out)


ENFORCEMENT_CERT = "enforcement_cert"

DEFAULT_TEAMS: Mapping[Route, TeamSpec] = {
    # at least two certified officers on site (行政处罚法: 执法人员不得少于两人) + a sampler
    Route.JOINT_INSPECTION: TeamSpec(
        (SlotSpec(Role.ENFORCEMENT, 2, ENFORCEMENT_CERT), SlotSpec(Role.MONITORING, 1))
    ),
    Route.OPERATIONS: TeamSpec((SlotSpec(Role.OPERATIONS, 1),)),
    Route.DESK_REVIEW: TeamSpec((SlotSpec(Role.ENFORCEMENT, 1),)),
}


@dataclass(frozen=True)
class AssignmentPolicy:
    teams: Mapping[Route, TeamSpec] = field(default_factory=lambda: dict(DEFAULT_TEAMS))
    # team overrides for one route at one priority, e.g. P1 joint inspection with 2 samplers
    overrides: Mapping[tuple[Route, Priority], TeamSpec] = field(default_factory=dict)
    average_speed_kmh: float = 40.0
    road_factor: float = 1.3  # road distance / great-circle distance
    load_penalty_minutes: float = 30.0
    unknown_position_minutes: float = 240.0
    widest_level: Level = Level.PROVINCE
    max_load: int | None = None  # people at or above this many open tasks are skipped

    def team_for(self, route: Route, priority: Priority) -> TeamSpec:
        return self.overrides.get((route, priority)) or self.teams[route]


def _team_from_list(raw: Sequence[Mapping[str, Any]]) -> TeamSpec:
    return TeamSpec(
        tuple(
            SlotSpec(
                Role(str(s["role"]).upper()),
                int(s.get("count", 1)),
                str(s["certificate"]) if s.get("certificate") else None,
            )
            for s in raw
        )
    )


def assignment_policy_from_dict(raw: Mapping[str, Any]) -> AssignmentPolicy:
    """`{teams: {JOINT_INSPECTION: [{role, count, certificate}]}, overrides: {"JOINT_INSPECTION/P1":
    [...]}, average_speed_kmh, road_factor, load_penalty_minutes, unknown_position_minutes,
    widest_level: county|city|province, max_load}`; absent keys keep the defaults."""
    base = AssignmentPolicy()
    teams = dict(base.teams)
    for route, slots in (raw.get("teams") or {}).items():
        teams[Route(str(route).upper())] = _team_from_list(slots)
    overrides: dict[tuple[Route, Priority], TeamSpec] = {}
    for key, slots in (raw.get("overrides") or {}).items():
        route, prio = str(key).split("/")
        overrides[(Route(route.upper()), Priority(prio.upper()))] = _team_from_list(slots)
    max_load = raw.get("max_load", base.max_load)
    return AssignmentPolicy(
        teams=teams,
        overrides=overrides,
        average_speed_kmh=float(raw.get("average_speed_kmh", base.average_speed_kmh)),
        road_factor=float(raw.get("road_factor", base.road_factor)),
        load_penalty_minutes=float(raw.get("load_penalty_minutes", base.load_penalty_minutes)),
        unknown_position_minutes=float(
            raw.get("unknown_position_minutes", base.unknown_position_minutes)
        ),
        widest_level=Level[str(raw.get("widest_level", base.widest_level.name)).upper()],
        max_load=int(max_load) if max_load is not None else None,
    )


@dataclass(frozen=True, slots=True)
class TeamRequest:
    task_id: str
    county_code: str
    lat: float | None
    lon: float | None
    slots: tuple[SlotRequest, ...]
    exclude: frozenset[str] = frozenset()  # declined / timed out / already on the team


@dataclass(frozen=True, slots=True)
class Pick:
    slot_id: str
    role: Role
    person_id: str
    level: Level
    division: str
    distance_km: float | None
    travel_minutes: float
    load: int
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class TeamAssignment:
    task_id: str
    picks: tuple[Pick, ...]
    unfilled: tuple[SlotRequest, ...]
    widened: tuple[str, ...]  # one line per role that had to leave the county
    passed_over: Mapping[str, int]  # why others were not chosen: reason -> count

    @property
    def complete(self) -> bool:
        return not self.unfilled

    def person_ids(self) -> tuple[str, ...]:
        return tuple(p.person_id for p in self.picks)


_LEVELS = (Level.COUNTY, Level.CITY, Level.PROVINCE)


class Assigner:
    """Assigns teams at one instant. Eligibility per (division, role, certificate) is computed
    once and reused, and loads grow as teams are picked, so a batch of simultaneous alerts
    spreads over people instead of piling on the nearest."""

    def __init__(
        self,
        roster: Roster,
        policy: AssignmentPolicy,
        now: datetime,
        loads: Mapping[str, int] | None = None,
    ) -> None:
        self.roster = roster
        self.policy = policy
        self.now = now
        self.loads: dict[str, int] = {p.id: p.load for p in roster.people}
        if loads:
            self.loads.update(loads)
        self._tz = roster.tz
        self._eligible: dict[
            tuple[str, Role, str | None], tuple[tuple[Person, ...], Counter[str]]
        ] = {}
        self._minutes_per_km = policy.road_factor / policy.average_speed_kmh * 60.0

    def _eligible_in(
        self, division: str, role: Role, certificate: str | None
    ) -> tuple[tuple[Person, ...], Counter[str]]:
        key = (division, role, certificate)
        hit = self._eligible.get(key)
        if hit is not None:
            return hit
        ok: list[Person] = []
        rejected: Counter[str] = Counter()
        for p in self.roster.within(division, role):
            if not p.on_duty:
                rejected["marked_off_duty"] += 1
            elif not p.on_shift(self.now, self._tz):
                rejected["off_shift"] += 1
            elif certificate is not None and not p.has_certificate(certificate, self.now):
                rejected["no_valid_certificate"] += 1
            else:
                ok.append(p)
        result = (tuple(ok), rejected)
        self._eligible[key] = result
        return result

    def _score(
        self, p: Person, lat: float | None, lon: float | None
    ) -> tuple[float, float | None, int]:
        load = self.loads.get(p.id, 0)
        if lat is None or lon is None or p.lat is None or p.lon is None:
            travel, km = self.policy.unknown_position_minutes, None
        else:
            km = haversine_km(lat, lon, p.lat, p.lon)
            travel = km * self._minutes_per_km
        return travel + self.policy.load_penalty_minutes * load, km, load

    def assign(self, request: TeamRequest) -> TeamAssignment:
        picks: list[Pick] = []
        unfilled: list[SlotRequest] = []
        widened: list[str] = []
        passed: Counter[str] = Counter()
        taken: set[str] = set(request.exclude)
        max_load = self.policy.max_load
        groups: dict[tuple[Role, str | None], list[SlotRequest]] = {}
        for slot in request.slots:
            groups.setdefault((slot.role, slot.certificate), []).append(slot)

        for (role, cert), slots in groups.items():
            chosen: list[tuple[float, str, Person, float | None, int, Level, str, int]] = []
            last_rejected: Counter[str] = Counter()
            excluded_seen: set[str] = set()
            lower_ranked: set[str] = set()
            at_max_load: set[str] = set()
            for level in _LEVELS:
                if level.value < self.policy.widest_level.value:
                    break
                division = code_at(request.county_code, level)
                if division is None:
                    continue
                eligible, last_rejected = self._eligible_in(division, role, cert)
                ranked = []
                for p in eligible:
                    if p.id in taken:
                        if p.id in request.exclude:
                            excluded_seen.add(p.id)
                        continue
                    if max_load is not None and self.loads.get(p.id, 0) >= max_load:
                        at_max_load.add(p.id)
                        continue
                    score, km, load = self._score(p, request.lat, request.lon)
                    ranked.append((score, p.id, p, km, load))
                # scores equal to a thousandth of a minute are ties: float noise in the
                # distance must not decide who goes, the person id does
                ranked.sort(key=lambda r: (round(r[0], 3), r[1]))
                need = len(slots) - len(chosen)
                for score, pid, p, km, load in ranked[:need]:
                    chosen.append((score, pid, p, km, load, level, division, len(ranked)))
                    taken.add(pid)
                    lower_ranked.discard(pid)
                lower_ranked.update(r[1] for r in ranked[need:])
                if level is not Level.COUNTY and ranked[:need]:
                    widened.append(
                        f"{role.value}: widened to {level.name.lower()} {division} "
                        f"(found {len(chosen) - len(ranked[:need])} of {len(slots)} nearer in)"
                    )
                if len(chosen) == len(slots):
                    break
            passed.update(last_rejected)
            passed["declined_or_timed_out"] += len(excluded_seen)
            passed["ranked_lower"] += len(lower_ranked)
            passed["at_max_load"] += len(at_max_load)
            for slot, (score, pid, _p, km, load, level, division, n) in zip(
                slots, chosen, strict=False
            ):
                travel = score - self.policy.load_penalty_minutes * load
                where = f"{level.name.lower()} {division}"
                dist = f"{km:.1f} km" if km is not None else "position unknown"
                picks.append(
                    Pick(
                        slot_id=slot.slot_id,
                        role=role,
                        person_id=pid,
                        level=level,
                        division=division,
                        distance_km=km,
                        travel_minutes=travel,
                        load=load,
                        score=score,
                        reason=(
                            f"{role.value.lower()} from {where}, on duty"
                            + (f", valid {cert}" if cert else "")
                            + f"; {dist}, ~{travel:.0f} min travel, {load} open task(s); "
                            f"score {score:.1f} best of {n} available"
                        ),
                    )
                )
                self.loads[pid] = load + 1
            unfilled.extend(slots[len(chosen) :])
        return TeamAssignment(
            task_id=request.task_id,
            picks=tuple(picks),
            unfilled=tuple(unfilled),
            widened=tuple(widened),
            passed_over={k: v for k, v in sorted(passed.items()) if v},
        )


def assign_batch(
    roster: Roster,
    policy: AssignmentPolicy,
    requests: Iterable[TeamRequest],
    now: datetime,
    loads: Mapping[str, int] | None = None,
) -> list[TeamAssignment]:
    """Assign simultaneous requests in the given order, each seeing the loads left by the
    previous ones."""
    assigner = Assigner(roster, policy, now, loads)
    return [assigner.assign(r) for r in requests]
