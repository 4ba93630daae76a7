"""Changes made directly in the database, behind the service's back, are found by verify."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from casefile.domain.audit import ChainProblem
from casefile.entrypoints.cli import casefile_app, export_case, verify_database
from tests.integration.casefile.conftest import Server
from tests.integration.casefile.walk import CASE, walk

runner = CliRunner()


async def _populated(server: Server, channel: grpc.aio.Channel) -> None:
    await walk(server, server.stub(channel), upto=9)  # 9 entries, seq 1..9


async def test_untouched_database_verifies(server: Server, channel: grpc.aio.Channel) -> None:
    await _populated(server, channel)
    report, problems = verify_database(server.url)
    assert report.ok and report.checked == 9 and problems == []
    result = runner.invoke(casefile_app, ["verify", "--db", server.url])
    assert result.exit_code == 0, result.output


TAMPERS = {
    # a payload rewritten in place: entry 4 no longer matches its own hash
    "edit": (
        "UPDATE audit_entries SET payload_json = replace(payload_json, 'SEAL-001', 'SEAL-002') "
        "WHERE seq = 4",
        4,
        ChainProblem.EDITED,
    ),
    # an entry removed: 6 is missing where it belongs
    "delete": ("DELETE FROM audit_entries WHERE seq = 6", 6, ChainProblem.DELETED),
    # two entries' places swapped (seq renumbered): 3 now holds 5's content, which hashed seq 5
    "swap": (
        "UPDATE audit_entries SET seq = CASE seq WHEN 3 THEN 5 WHEN 5 THEN 3 END "
        "WHERE seq IN (3, 5)",
        3,
        ChainProblem.EDITED,
    ),
}


@pytest.mark.parametrize("kind", sorted(TAMPERS))
async def test_chain_tamper_is_found(server: Server, channel: grpc.aio.Channel, kind: str) -> None:
    await _populated(server, channel)
    sql, bad_seq, problem = TAMPERS[kind]
    with server.store.engine.begin() as conn:
        if kind == "swap":  # through a free value: the primary key is checked per row on PG
            conn.execute(text("UPDATE audit_entries SET seq = -3 WHERE seq = 3"))
            conn.execute(text("UPDATE audit_entries SET seq = 3 WHERE seq = 5"))
            conn.execute(text("UPDATE audit_entries SET seq = 5 WHERE seq = -3"))
        else:
            conn.execute(text(sql))
    report, _ = verify_database(server.url)
    assert not report.ok
    assert (report.first_bad_seq, report.problem) == (bad_seq, problem)
    result = runner.invoke(casefile_app, ["verify", "--db", server.url])
    assert result.exit_code == 1 and "TAMPERED" in result.output


async def test_case_document_edit_is_found(server: Server, channel: grpc.aio.Channel) -> None:
    await _populated(server, channel)
    with server.store.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE case_files SET doc = replace(doc, 'COD 182', 'COD 82') WHERE case_id = :c"
            ),
            {"c": CASE},
        )
    report, problems = verify_database(server.url)
    assert report.ok
    assert problems == [f"case {CASE}: document differs from its audit chain"]


async def test_state_column_edit_is_found(server: Server, channel: grpc.aio.Channel) -> None:
    await _populated(server, channel)
    with server.store.engine.begin() as conn:
        conn.execute(text("UPDATE case_files SET state = 'CLOSED'"))
    _, problems = verify_database(server.url)
    assert problems == [f"case {CASE}: columns differ from its document"]


async def test_export_of_format_1_stays_available(
    server: Server, channel: grpc.aio.Channel
) -> None:
    # the CLI's signed archives are tested in test_bundle_archive; the JSON export remains
    await _populated(server, channel)
    bundle = export_case(server.url, CASE)
    assert bundle["case_id"] == CASE and len(bundle["entries"]) == 9  # type: ignore[arg-type]
