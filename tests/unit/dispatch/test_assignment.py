from datetime import date, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.domain.assignment import (
    Assigner,
    AssignmentPolicy,
    SlotRequest,
    TeamRequest,
    TeamSpec,
    assign_batch,
    assignment_policy_from_dict,
)
from dispatch.domain.roster import Level, Person, Role, Roster, Shift
from dispatch.domain.routes import Priority, Route
from tests.unit.dispatch.factories import COUNTY, NOW, OUTLET, person, roster

E, M = Role.ENFORCEMENT, Role.MONITORING
POLICY = AssignmentPolicy()
JOINT = POLICY.team_for(Route.JOINT_INSPECTION, Priority.P2).slot_requests()
DESK = POLICY.team_for(Route.DESK_REVIEW, Priority.P2).slot_requests()


def request(slots: tuple[SlotRequest, ...] = JOINT, task: str = "T1", exclude=frozenset()):
    return TeamRequest(task, COUNTY, OUTLET[0], OUTLET[1], slots, frozenset(exclude))


def assign(r: Roster, req: TeamRequest | None = None):
    return Assigner(r, POLICY, NOW).assign(req or request())


def team(result) -> dict[str, str]:
    return {p.slot_id: p.person_id for p in result.picks}


def test_slot_ids_for_default_joint_team() -> None:
    assert [s.slot_id for s in JOINT] == ["ENFORCEMENT#1", "ENFORCEMENT#2", "MONITORING#1"]
    assert JOINT[0].certificate == "enforcement_cert"
    assert JOINT[2].certificate is None


def test_two_nearest_officers_and_nearest_sampler() -> None:
    r = roster(
        person("e3", E, north=0.03),
        person("e1", E, north=0.01),
        person("e2", E, north=0.02),
        person("m2", M, north=0.04),
        person("m1", M, north=0.02),
    )
    result = assign(r)
    assert team(result) == {"ENFORCEMENT#1": "e1", "ENFORCEMENT#2": "e2", "MONITORING#1": "m1"}
    assert result.complete and result.widened == ()
    first = result.picks[0]
    # 0.01 deg lat = 1.11195 km; x1.3 road / 40 km/h * 60 = 2.168 min
    assert first.distance_km == pytest.approx(1.112, abs=1e-3)
    assert first.travel_minutes == pytest.approx(2.168, abs=1e-3)
    assert first.level is Level.COUNTY
    assert "1.1 km" in first.reason and "enforcement_cert" in first.reason
    assert result.passed_over == {"ranked_lower": 2}  # e3 and m2


def test_widens_to_city_when_county_is_short_and_records_it() -> None:
    r = roster(
        person("e1", E, north=0.05),
        person("c2", E, north=0.01, county="320102"),
        person("c1", E, north=0.02, county="320102"),
        person("p1", E, north=0.0, county="321002"),  # other city in the province
        person("m1", M, north=0.02),
    )
    result = assign(r)
    assert team(result)["ENFORCEMENT#1"] == "e1"  # county first even though farther
    assert team(result)["ENFORCEMENT#2"] == "c2"
    assert result.picks[1].level is Level.CITY and result.picks[1].division == "3201"
    assert len(result.widened) == 1 and "city 3201" in result.widened[0]


def test_widens_to_province_and_stops_at_configured_level() -> None:
    r = roster(person("e1", E), person("p1", E, county="321002"), person("m1", M))
    assert team(assign(r))["ENFORCEMENT#2"] == "p1"
    city_only = AssignmentPolicy(widest_level=Level.CITY)
    result = Assigner(r, city_only, NOW).assign(request())
    assert [s.slot_id for s in result.unfilled] == ["ENFORCEMENT#2"]
    assert not result.complete


def test_city_level_officer_is_reached_by_widening_not_at_county() -> None:
    r = roster(person("e1", E, north=0.05), person("city", E, north=0.0, county="320100"))
    result = Assigner(r, POLICY, NOW).assign(request(DESK))
    assert team(result) == {"ENFORCEMENT#1": "e1"}


def test_same_distance_lower_load_wins() -> None:
    r = roster(person("a", E, north=0.01, load=2), person("b", E, north=0.01, load=1))
    assert team(Assigner(r, POLICY, NOW).assign(request(DESK))) == {"ENFORCEMENT#1": "b"}


def test_load_traded_against_distance_by_score() -> None:
    # near: 0 km, 1 open task -> 30.0; far: 11.12 km -> 21.68 min, idle -> 21.68
    r = roster(person("near", E, north=0.0, load=1), person("far", E, north=0.1))
    result = Assigner(r, POLICY, NOW).assign(request(DESK))
    assert team(result) == {"ENFORCEMENT#1": "far"}
    assert result.picks[0].score == pytest.approx(21.68, abs=0.01)


def test_equal_score_breaks_on_person_id() -> None:
    r = roster(person("zed", E, north=0.01), person("amy", E, north=-0.01))
    assert team(Assigner(r, POLICY, NOW).assign(request(DESK))) == {"ENFORCEMENT#1": "amy"}


def test_expired_certificate_excluded_valid_through_expiry_day() -> None:
    r = roster(
        person("expired", E, north=0.0, cert_expires=date(2026, 3, 1)),
        person("nocert", E, north=0.0, cert_expires=None),
        person("today", E, north=0.03, cert_expires=date(2026, 3, 2)),
        person("far", E, north=0.05),
        person("m1", M),
    )
    result = assign(r)
    assert team(result)["ENFORCEMENT#1"] == "today"
    assert team(result)["ENFORCEMENT#2"] == "far"
    assert result.passed_over["no_valid_certificate"] == 2


def test_off_shift_and_marked_off_excluded() -> None:
    weekend = (Shift(frozenset({5, 6}), time(8), time(18)),)
    r = roster(
        person("weekend", E, north=0.0, shifts=weekend),
        person("sick", E, north=0.0, on_duty=False),
        person("e1", E, north=0.02),
        person("e2", E, north=0.03),
        person("m1", M),
    )
    result = assign(r)
    assert team(result) == {"ENFORCEMENT#1": "e1", "ENFORCEMENT#2": "e2", "MONITORING#1": "m1"}
    assert result.passed_over["off_shift"] == 1
    assert result.passed_over["marked_off_duty"] == 1


def test_declined_people_excluded_and_one_person_fills_one_slot() -> None:
    r = roster(
        person("both", E, M, north=0.0),
        person("e1", E, north=0.01),
        person("e2", E, north=0.02),
        person("m1", M, north=0.05),
    )
    result = assign(r, request(exclude={"e1"}))
    assert team(result) == {"ENFORCEMENT#1": "both", "ENFORCEMENT#2": "e2", "MONITORING#1": "m1"}
    assert result.passed_over["declined_or_timed_out"] == 1


def test_nobody_left_reports_unfilled_slots() -> None:
    result = assign(roster(person("e1", E)))
    assert [s.slot_id for s in result.unfilled] == ["ENFORCEMENT#2", "MONITORING#1"]


def test_batch_updates_load_between_simultaneous_alerts() -> None:
    # second alert: a has load 1 -> 30.0; b at 5.56 km -> 10.84 -> b
    r = roster(person("a", E, north=0.0), person("b", E, north=0.05))
    results = assign_batch(r, POLICY, [request(DESK, "T1"), request(DESK, "T2")], NOW)
    assert [team(x)["ENFORCEMENT#1"] for x in results] == ["a", "b"]
    assert results[1].picks[0].load == 0


def test_team_override_by_route_and_priority() -> None:
    policy = assignment_policy_from_dict(
        {
            "overrides": {
                "JOINT_INSPECTION/P1": [
                    {"role": "enforcement", "count": 2, "certificate": "enforcement_cert"},
                    {"role": "monitoring", "count": 2},
                ]
            }
        }
    )
    assert len(policy.team_for(Route.JOINT_INSPECTION, Priority.P1).slot_requests()) == 4
    assert len(policy.team_for(Route.JOINT_INSPECTION, Priority.P2).slot_requests()) == 3
    assert isinstance(policy.team_for(Route.OPERATIONS, Priority.P1), TeamSpec)


def _pool() -> list[Person]:
    people = []
    for i in range(8):
        # pairs at equal distance north/south to force id tie-breaks
        people.append(person(f"e{i}", E, north=0.01 * (i // 2) * (1 if i % 2 else -1)))
    people += [person("m0", M, north=0.02), person("m1", M, north=-0.02)]
    people.append(person("c0", E, north=0.0, county="320102"))
    return people


@settings(max_examples=60, deadline=None)
@given(st.permutations(_pool()))
def test_same_team_whatever_the_roster_order(shuffled: list[Person]) -> None:
    expected = {"ENFORCEMENT#1": "e0", "ENFORCEMENT#2": "e1", "MONITORING#1": "m0"}
    assert team(assign(Roster(tuple(shuffled)))) == expected
