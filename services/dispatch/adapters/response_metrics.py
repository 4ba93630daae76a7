"""OpenTelemetry metrics of response times, for operators' charts.

`dispatch.stage.duration` (histogram, s; stage, route, priority, county) is recorded once per
task and stage, from the lifecycle step that completes the stage; `dispatch.sla.breaches`
(counter; clock, route, priority) once per breached clock. Both are fed with the effects of a
committed step only: a redelivered alert event or a repeated phone call produces no effects,
and a restart loads state without replaying them, so nothing is counted twice. Attributes are
bounded (county code, enums); never a task or person id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry import metrics

from dispatch.adapters.store import TaskMeta
from dispatch.domain.dispatcher import DispatchState
from dispatch.domain.effects import Effect, SlaBreach
from dispatch.domain.response_times import stages_completed
from dispatch.domain.tasks import TaskEvent

# seconds: a minute to a week, the span of the SLA targets (15 min accept to 7 d finish)
BUCKETS = (
    60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
    43200.0, 86400.0, 172800.0, 259200.0, 604800.0,
)  # fmt: skip


class ResponseMetrics:
    def __init__(self, meter: metrics.Meter | None = None) -> None:
        meter = meter or metrics.get_meter("liandong.dispatch")
        self.stage_duration = meter.create_histogram(
            "dispatch.stage.duration",
            unit="s",
            description="time a task took for a stage (dispatch, acceptance, travel, response, "
            "on site to done, total), recorded when the stage ends",
            explicit_bucket_boundaries_advisory=BUCKETS,
        )
        self.sla_breaches = meter.create_counter(
            "dispatch.sla.breaches", description="SLA clocks (ACCEPT, ARRIVE, FINISH) breached"
        )

    def record(
        self, effects: Iterable[Effect], state: DispatchState, metas: Mapping[str, TaskMeta]
    ) -> None:
        """Records what a committed step's effects complete (a task's alarm was raised at its
        meta's `alert_time`)."""
        for e in effects:
            if isinstance(e, TaskEvent):
                task = state.tasks.get(e.task_id)
                meta = metas.get(e.task_id)
                if task is None or meta is None:
                    continue
                for stage, seconds in stages_completed(task, meta.alert_time, e):
                    self.stage_duration.record(
                        seconds,
                        {
                            "stage": stage,
                            "route": task.route.value,
                            "priority": task.priority.value,
                            "county": task.county_code,
                        },
                    )
            elif isinstance(e, SlaBreach):
                task = state.tasks.get(e.task_id)
                if task is None:
                    continue
                self.sla_breaches.add(
                    1,
                    {"clock": e.clock, "route": task.route.value, "priority": task.priority.value},
                )
