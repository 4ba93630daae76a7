"""Parameter changes (CN 3020 field information): the diff, its severity under marks, the
judge's episodes, the record adapter on real decoded frames, state and the replay CLI."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from alerts.adapters.codec import event_from_change
from alerts.adapters.records import parameter_reports_from_record
from alerts.domain.findings import FindingKind, Severity
from alerts.domain.judge import Judge, OutletState, replay
from alerts.domain.parameters import (
    ParameterBook,
    ParameterReport,
    is_parameter,
    note_parameter,
    same_value,
)
from alerts.domain.registry import MarkKind, registry_from_dict
from alerts.entrypoints.replay_cli import app

from .hj212 import MN, NOX, record, upload_frame
from .scenario import SO2, T0, registry, registry_doc


def report(value: str, at: datetime, code: str = "i13004", ref: str = "") -> ParameterReport:
    return ParameterReport("OUT-G1", "MN-GAS-0001", SO2, code, value, at, ref or f"r-{value}")


def info_frame(
    at: datetime, fields: list[tuple[str, str]], mn: str = MN, cn: str = "3020"
) -> bytes:
    return upload_frame(cn, at, fields, mn)


def test_parameter_codes_are_the_information_class_3_of_any_device() -> None:
    assert [is_parameter(c) for c in ("i13004", "i23001", "i33010")] == [True, True, True]
    # logs (class 1), states (class 2), an unknown device class, a monitoring factor
    assert [is_parameter(c) for c in ("i11001", "i12001", "i43001", "a21002", "i1300")] == [
        False,
        False,
        False,
        False,
        False,
    ]


def test_values_compare_as_numbers_when_both_are_numbers() -> None:
    assert same_value("150", "150.0") and same_value(" 2.50", "2.5")
    assert not same_value("150", "151") and not same_value("0.95", "0.96")
    assert same_value("K-type ", "K-type") and not same_value("K-type", "J-type")
    assert not same_value("nan", "1")


def test_first_report_is_the_baseline_and_an_unchanged_one_is_evidence_only() -> None:
    book = ParameterBook()
    assert note_parameter(book, report("150.0", T0), []) is None
    same = note_parameter(book, report("150", T0 + timedelta(hours=1)), [])
    assert same is not None and not same.firing and same.severity is Severity.INFO


def test_a_change_outside_marks_is_major_and_names_both_values_and_records() -> None:
    book = ParameterBook()
    note_parameter(book, report("150.0", T0, ref="rec-1"), [])
    later = T0 + timedelta(hours=6)
    f = note_parameter(book, report("120.5", later, ref="rec-2"), [])
    assert f is not None and f.firing and f.kind is FindingKind.PARAMETER_CHANGED
    assert f.severity is Severity.MAJOR and f.factor == SO2
    assert f.value == -29.5  # 120.5 - 150.0
    v = f.explanation.values
    assert (v["previous"], v["current"], v["code"]) == ("150.0", "120.5", "i13004")
    assert v["previous_at"] == T0.isoformat() and v["current_at"] == later.isoformat()
    assert f.explanation.record_refs == ("rec-1", "rec-2")
    assert f.explanation.window_start == T0 and f.explanation.window_end == later
    assert "digestion temperature" in f.explanation.summary
    assert "outside any approved" in f.explanation.summary
    assert f.rule_id == "LD-ANO-PARAM/1"


def test_a_change_inside_a_calibration_mark_is_reported_at_warning() -> None:
    book = ParameterBook()
    note_parameter(book, report("1.02", T0, code="i13010"), [])
    f = note_parameter(
        book,
        report("0.98", T0 + timedelta(hours=1), code="i13010"),
        [MarkKind.CALIBRATION, MarkKind.STARTUP],
    )
    assert f is not None and f.firing and f.severity is Severity.WARNING
    assert f.explanation.values["under_marks"] == "calibration"
    assert "inside an approved calibration mark" in f.explanation.summary
    # a start-up mark alone does not make a parameter change expected work
    g = note_parameter(
        book, report("0.90", T0 + timedelta(hours=2), code="i13010"), [MarkKind.STARTUP]
    )
    assert g is not None and g.severity is Severity.MAJOR


def test_an_older_report_changes_nothing() -> None:
    book = ParameterBook()
    note_parameter(book, report("150", T0 + timedelta(hours=2)), [])
    assert note_parameter(book, report("99", T0 + timedelta(hours=1)), []) is None
    assert note_parameter(book, report("99", T0 + timedelta(hours=2)), []) is None
    kept = book.values[(SO2, "i13004")]
    assert (kept.value, kept.ts) == ("150", (T0 + timedelta(hours=2)).timestamp())


@given(st.lists(st.sampled_from(["1", "1.0", "2", "2.00", "abc"]), min_size=1, max_size=30))
def test_one_firing_finding_per_change_of_value(values: list[str]) -> None:
    book = ParameterBook()
    fired = 0
    for n, v in enumerate(values):
        f = note_parameter(book, report(v, T0 + timedelta(hours=n)), [])
        fired += bool(f is not None and f.firing)
    # count the changes by hand: numbers by value, text by itself
    canon = [v if v == "abc" else float(v) for v in values]
    assert fired == sum(1 for a, b in itertools.pairwise(canon) if a != b)


def test_judge_opens_an_episode_and_clears_it_after_a_day_of_unchanged_reports() -> None:
    judge = Judge(registry())
    assert judge.on_parameter(report("150", T0), T0) == []
    opened = judge.on_parameter(report("120", T0 + timedelta(hours=1)), T0)
    assert [(c.change.value, c.kind.value, c.factor) for c in opened] == [
        ("opened", "parameter_changed", SO2)
    ]
    event = event_from_change(opened[0], judge.registry)
    assert (event.kind, event.severity) == ("PARAMETER_CHANGED", "HIGH")
    # unchanged reports: still open after 23 h, cleared at 24 h after the change
    assert judge.on_parameter(report("120", T0 + timedelta(hours=24)), T0) == []
    cleared = judge.on_parameter(report("120.0", T0 + timedelta(hours=25)), T0)
    assert [c.change.value for c in cleared] == ["cleared"]


def test_judge_lowers_severity_under_an_approved_calibration_mark() -> None:
    doc = registry_doc()
    doc["marks"] = [
        {
            "outlet": "OUT-G1",
            "kind": "calibration",
            "start": "2025-03-10T11:00:00",
            "end": "2025-03-10T12:00:00",
            "approved": True,
            "reference": "CAL-7",
        }
    ]
    judge = Judge(registry_from_dict(doc))
    judge.on_parameter(report("150", T0), T0)
    [opened] = judge.on_parameter(report("140", T0 + timedelta(hours=1, minutes=10)), T0)
    assert opened.severity is Severity.WARNING


def test_state_round_trips_and_old_state_without_parameters_decodes() -> None:
    judge = Judge(registry())
    judge.on_parameter(report("150", T0), T0)
    judge.on_parameter(report("120", T0 + timedelta(hours=1)), T0)
    doc = judge.export_outlet("OUT-G1")
    assert doc is not None
    again = Judge(registry())
    again.import_outlet(json.loads(json.dumps(doc)))
    assert again.states["OUT-G1"].parameters == judge.states["OUT-G1"].parameters
    # the restored book keeps judging: back to 150 is a change again, on the open episode
    updated = again.on_parameter(report("150", T0 + timedelta(hours=2)), T0)
    assert [c.change.value for c in updated] == ["updated"]
    old = {k: v for k, v in doc.items() if k != "parameters"}
    assert OutletState.from_dict(old, again.config.episodes).parameters == ParameterBook()


def test_reports_from_a_decoded_3020_upload() -> None:
    at = T0 + timedelta(hours=3)
    frame = info_frame(
        at,
        [("PolId", NOX), ("i13004-Info", "150.0"), ("i13010-Info", "0.98"), ("i12001-Info", "1")],
    )
    rec = record(frame, at)
    reports = parameter_reports_from_record(rec, at)
    assert [(r.factor, r.code, r.value) for r in reports] == [
        (NOX, "i13004", "150.0"),
        (NOX, "i13010", "0.98"),
    ]  # the working state i12001 is not a parameter
    assert all(r.data_time == at and r.record_ref == rec.meta.event_id for r in reports)
    logger_level = record(info_frame(at, [("i23001-Info", "5")]), at)
    [r] = parameter_reports_from_record(logger_level, at)
    assert (r.factor, r.code) == ("*", "i23001")
    minute = record(info_frame(at, [("i13004-Info", "1")], cn="2051"), at)
    assert parameter_reports_from_record(minute, at) == []


def test_replay_handles_parameter_reports_beside_readings() -> None:
    judge = Judge(registry())
    changes = replay(judge, [report("150", T0), report("151", T0 + timedelta(hours=1))])
    assert [(c.change.value, c.kind.value) for c in changes] == [("opened", "parameter_changed")]


def test_replay_cli_prints_a_parameter_change_from_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(registry_doc(), allow_unicode=True), encoding="utf-8")
    capture = tmp_path / "info.hj212"
    capture.write_bytes(
        info_frame(T0, [("PolId", SO2), ("i13004-Info", "150")])
        + info_frame(T0 + timedelta(hours=2), [("PolId", SO2), ("i13004-Info", "165")])
    )
    result = CliRunner().invoke(app, ["--registry", str(path), str(capture)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    # the outlet sent no data in those hours: the judge says so too (hour_missing)
    [line] = [x for x in lines if x["kind"] == "parameter_changed"]
    assert (line["change"], line["kind"], line["factor"]) == ("opened", "parameter_changed", SO2)
    assert line["explanation"]["values"]["previous"] == "150"
    assert line["explanation"]["values"]["current"] == "165"


def test_both_times_are_given_in_station_time_whatever_the_report_carries() -> None:
    book = ParameterBook()
    note_parameter(book, report("150", T0), [])
    utc_time = (T0 + timedelta(hours=1)).astimezone(UTC)  # records carry UTC instants
    f = note_parameter(book, report("140", utc_time), [])
    assert f is not None
    v = f.explanation.values
    assert v["previous_at"] == "2025-03-10T10:00:00+08:00"
    assert v["current_at"] == "2025-03-10T11:00:00+08:00"
    assert "(reported 2025-03-10T11:00:00+08:00)" in f.explanation.summary
