"""Who may move a task to which status (issue 12: an offered place is not a licence).

* CANCELLED: the task's duty manager only, with the reason (it ends the team's work and,
  for a task with a case, is recorded in the case's history).
* EN_ROUTE, ON_SITE (the caller's own check-in), SAMPLING: a team member who has accepted
  their place. Being offered a place gives no right over the task.
* COMPLETED: an accepted team member; on a joint inspection an accepted enforcement officer
  (the officers answer for the inspection; monitoring staff take the samples).
* Everyone else, the duty manager included for the field steps: refused (403).
Dispatch itself (alert cleared, policy) cancels through its own path, not through this check.
"""

from __future__ import annotations

from dispatch.domain.acceptance import AcceptanceState, SlotStatus
from dispatch.domain.roster import Role
from dispatch.domain.routes import Route
from dispatch.domain.tasks import Task, TaskError, TaskState


class NotPermitted(TaskError):
    """The caller may not move this task to that status (403)."""

    def __init__(self, task_id: str, person_id: str, status: TaskState, why: str) -> None:
        super().__init__(f"task {task_id}: {person_id} may not set {status.value}: {why}")
        self.task_id = task_id
        self.person_id = person_id
        self.status = status


class ReasonRequired(TaskError):
    """A cancellation without its reason (422)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id}: a cancellation needs the reason (note)")
        self.task_id = task_id


def accepted_roles(acc: AcceptanceState, person_id: str) -> frozenset[Role]:
    return frozenset(
        s.role for s in acc.slots if s.person_id == person_id and s.status is SlotStatus.ACCEPTED
    )


def check_status_right(
    task: Task, acc: AcceptanceState, person_id: str, status: TaskState, note: str
) -> None:
    """Raises NotPermitted or ReasonRequired; returns when `person_id` may set `status`."""
    if status is TaskState.CANCELLED:
        if acc.manager_id is None or person_id != acc.manager_id:
            raise NotPermitted(
                task.task_id, person_id, status, "only the task's duty manager cancels it"
            )
        if not note.strip():
            raise ReasonRequired(task.task_id)
        return
    roles = accepted_roles(acc, person_id)
    if not roles:
        why = (
            "a place offered is not accepted yet"
            if person_id in acc.members()
            else "not on the accepted team"
        )
        raise NotPermitted(task.task_id, person_id, status, why)
    if (
        status is TaskState.COMPLETED
        and task.route is Route.JOINT_INSPECTION
        and Role.ENFORCEMENT not in roles
    ):
        raise NotPermitted(
            task.task_id, person_id, status, "a joint inspection is completed by its officers"
        )
