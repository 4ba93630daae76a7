"""The generated contract code in src/liandong/v1 must match proto/ (run `make proto`)."""

from __future__ import annotations

from pathlib import Path

from liandong.protogen import OUT_DIR, PACKAGE, generate


def test_generated_code_is_current(tmp_path: Path) -> None:
    fresh = {p.name: p.read_bytes() for p in generate(out_dir=tmp_path)}
    committed = {p.name: p.read_bytes() for p in (OUT_DIR / PACKAGE).iterdir() if p.is_file()}
    assert sorted(fresh) == sorted(committed), "generated files differ in name: run `make proto`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated code {stale}: run `make proto`"


def test_every_event_carries_the_envelope() -> None:
    from liandong.v1 import alerts_pb2, casefile_pb2, dispatch_pb2, records_pb2

    for message in (
        records_pb2.MonitoringRecord,
        records_pb2.RejectedFrame,
        records_pb2.GatewayCommand,
        records_pb2.CommandResult,
        alerts_pb2.AlertEvent,
        dispatch_pb2.DispatchEvent,
        casefile_pb2.CaseEvent,
    ):
        field = message.DESCRIPTOR.fields_by_name["meta"]
        assert field.message_type.full_name == "liandong.v1.EventMeta", message
