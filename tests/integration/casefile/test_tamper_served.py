"""What GetCase serves is what the audit chain vouches for, and a truncated tail is found
(issue 12, items 5 and 6)."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from casefile.domain.audit import ChainProblem
from casefile.entrypoints.cli import casefile_app, verify_database
from liandong.v1 import casefile_pb2
from tests.integration.casefile.conftest import Server
from tests.integration.casefile.test_grpc_calls import MGR, code_of
from tests.integration.casefile.walk import CASE, walk

pytestmark = pytest.mark.integration
runner = CliRunner()

COLUMN_EDITS = {
    "team": "UPDATE case_files SET team_json = replace(team_json, '王', '赵')",
    "summary": "UPDATE case_files SET summary = 'nothing found'",
    "opened_by": "UPDATE case_files SET opened_by = 'mgr'",
    "alert ids": "UPDATE case_files SET alert_ids_json = '[\"alert-other\"]'",
    "task id": "UPDATE case_files SET task_id = 'task-other'",
    "enterprise": "UPDATE case_files SET enterprise_id = 'ent-other'",
}


@pytest.mark.parametrize("what", sorted(COLUMN_EDITS))
async def test_served_column_edit_is_found_and_not_served(
    server: Server, channel: grpc.aio.Channel, what: str
) -> None:
    stub = server.stub(channel)
    await walk(server, stub, upto=3)
    before = await stub.GetCase(casefile_pb2.GetCaseRequest(case_id=CASE), metadata=MGR)
    with server.store.engine.begin() as conn:
        conn.execute(text(COLUMN_EDITS[what]))
    report, problems = verify_database(server.url)
    assert report.ok  # the chain itself is intact
    assert len(problems) == 1 and problems[0].startswith(f"case {CASE}: ")
    assert runner.invoke(casefile_app, ["verify", "--db", server.url]).exit_code == 1
    code, detail = await code_of(
        stub.GetCase(casefile_pb2.GetCaseRequest(case_id=CASE), metadata=MGR)
    )
    assert code is grpc.StatusCode.DATA_LOSS and "verify" in detail
    code, _ = await code_of(stub.ListCases(casefile_pb2.ListCasesRequest(), metadata=MGR))
    assert code is grpc.StatusCode.DATA_LOSS
    assert before.case_id == CASE


async def test_deleted_tail_behind_the_head_row_is_found(
    server: Server, channel: grpc.aio.Channel
) -> None:
    await walk(server, server.stub(channel), upto=5)
    with server.store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entries WHERE seq >= 4"))
        # the case row rolled back too, so every remaining row is consistent by itself
    report, _ = verify_database(server.url)
    assert not report.ok
    assert report.problem is ChainProblem.TRUNCATED and report.first_bad_seq == 4
    result = runner.invoke(casefile_app, ["verify", "--db", server.url])
    assert result.exit_code == 1 and "TAMPERED" in result.output
