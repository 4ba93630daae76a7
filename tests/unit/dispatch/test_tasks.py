from datetime import timedelta

import pytest

from dispatch.domain.routes import Priority, Route
from dispatch.domain.tasks import (
    IllegalTransition,
    OutsideGeofence,
    TaskState,
    new_task,
    task_id_for,
)
from tests.unit.dispatch.factories import COUNTY, NOW, OUTLET

S = TaskState


def make(route: Route = Route.JOINT_INSPECTION):
    return new_task("A1", route, Priority.P2, "E1", "O1", COUNTY, OUTLET[0], OUTLET[1], NOW)


def test_task_id_is_uuid5_of_first_alert() -> None:
    task, created = make()
    assert task.task_id == task_id_for("A1") == make()[0].task_id
    assert task.task_id != task_id_for("A2")
    assert (created.seq, created.from_state, created.to_state) == (0, None, S.CREATED)


def test_joint_inspection_path_records_actor_time_and_seq() -> None:
    task, _ = make()
    steps = [
        (S.ASSIGNING, "dispatch", None),
        (S.ASSIGNED, "e1", None),
        (S.EN_ROUTE, "e1", None),
        (S.ON_SITE, "e1", (OUTLET[0] + 0.004, OUTLET[1])),  # ~445 m
        (S.SAMPLING, "m1", None),
        (S.COMPLETED, "e1", None),
    ]
    events = []
    for i, (to, actor, pos) in enumerate(steps):
        events.append(task.transition(to, actor, NOW + timedelta(minutes=i), pos))
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e.from_state for e in events] == [
        S.CREATED, S.ASSIGNING, S.ASSIGNED, S.EN_ROUTE, S.ON_SITE, S.SAMPLING
    ]  # fmt: skip
    assert events[3].actor == "e1" and events[3].at == NOW + timedelta(minutes=3)
    assert events[3].position == (OUTLET[0] + 0.004, OUTLET[1])
    assert len({e.event_id for e in events}) == 6
    assert task.state is S.COMPLETED and not task.open


@pytest.mark.parametrize(
    ("path", "attempt"),
    [
        ((), S.ASSIGNED),  # CREATED -> ASSIGNED skips ASSIGNING
        ((S.ASSIGNING, S.ASSIGNED), S.ON_SITE),  # must be en route first
        ((S.ASSIGNING,), S.COMPLETED),
    ],
)
def test_illegal_transitions_name_state_and_attempt(path, attempt) -> None:
    task, _ = make()
    for to in path:
        task.transition(to, "x", NOW)
    with pytest.raises(IllegalTransition) as err:
        task.transition(attempt, "x", NOW, position=OUTLET)
    assert err.value.state is task.state
    assert err.value.attempted is attempt
    assert task.state.value in str(err.value) and attempt.value in str(err.value)


def test_cancel_from_any_open_state_but_not_after_terminal() -> None:
    task, _ = make()
    task.transition(S.ASSIGNING, "dispatch", NOW)
    ev = task.transition(S.CANCELLED, "dm", NOW, note="duplicate")
    assert ev.note == "duplicate"
    with pytest.raises(IllegalTransition):
        task.transition(S.CANCELLED, "dm", NOW)


def _en_route():
    task, _ = make()
    for to in (S.ASSIGNING, S.ASSIGNED, S.EN_ROUTE):
        task.transition(to, "e1", NOW)
    return task


def test_check_in_outside_geofence_refused() -> None:
    task = _en_route()
    with pytest.raises(OutsideGeofence) as err:
        task.transition(S.ON_SITE, "e1", NOW, (OUTLET[0] + 0.005, OUTLET[1]))  # ~556 m
    assert err.value.distance_m == pytest.approx(556.0, abs=1.0)
    assert task.state is S.EN_ROUTE and task.seq == 3
    with pytest.raises(OutsideGeofence):
        task.transition(S.ON_SITE, "e1", NOW, None)


def test_configurable_geofence_radius() -> None:
    task = _en_route()
    task.transition(S.ON_SITE, "e1", NOW, (OUTLET[0] + 0.005, OUTLET[1]), geofence_m=600)
    assert task.state is S.ON_SITE


def test_route_specific_paths() -> None:
    desk, _ = make(Route.DESK_REVIEW)
    for to in (S.ASSIGNING, S.ASSIGNED, S.COMPLETED):
        desk.transition(to, "e1", NOW)
    ops, _ = make(Route.OPERATIONS)
    for to in (S.ASSIGNING, S.ASSIGNED, S.EN_ROUTE):
        ops.transition(to, "o1", NOW)
    ops.transition(S.ON_SITE, "o1", NOW, OUTLET)
    with pytest.raises(IllegalTransition):
        ops.transition(S.SAMPLING, "o1", NOW)
    ops.transition(S.COMPLETED, "o1", NOW)
