"""`make bench` finishes: a failing module is reported and the others still run and report,
each figure beside a ceiling measured in the same run (bench/run.py)."""

from __future__ import annotations

from bench.run import ceiling_text, run_all


def test_a_failing_module_is_reported_and_the_others_still_run() -> None:
    results, failed = run_all(["no_such_module", "casefile_audit"], timeout=600)

    assert set(failed) == {"no_such_module"}
    assert "ModuleNotFoundError" in failed["no_such_module"]
    assert results, "casefile_audit ran after the failure"
    assert {r["module"] for r in results} == {"casefile_audit"}
    for record in results:
        ceiling = record["ceiling"]
        assert ceiling["unit"] == "ops/s" and ceiling["value"] > 0


def test_ratio_is_given_only_for_a_ceiling_in_the_same_unit() -> None:
    same = {
        "value": 50.0,
        "unit": "frames/s",
        "ceiling": {"name": "c", "value": 200.0, "unit": "frames/s"},
    }
    other = {"value": 50.0, "unit": "s", "ceiling": {"name": "c", "value": 200.0, "unit": "ops/s"}}

    assert ceiling_text(same)[1] == "0.25"
    assert ceiling_text(other)[1] == ""
    assert "200" in ceiling_text(other)[0]


def test_a_module_past_its_time_is_stopped_and_reported() -> None:
    results, failed = run_all(["casefile_audit"], timeout=0.5)

    assert results == []
    assert failed == {"casefile_audit": "timed out after 0 s"}
