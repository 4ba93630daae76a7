"""The phone API on a real port for the contract test: `python -m tests.contract.phone_api_server
PORT DIR KEY`. A dispatch service over SQLite in DIR with one open joint inspection (the
dispatch test harness: the roster and registry of tests/unit/dispatch), its case in a real
casefile gRPC server (SQLite and a file evidence store in DIR), an upload spool for the
evidence routes, served by uvicorn: every route the phone API has in production, the OpenID
Connect sign-in included when LIANDONG_OIDC_ISSUER and LIANDONG_OIDC_CLIENT_ID are set."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import uvicorn

from casefile import migrations
from casefile.adapters.evidence_store import open_store
from casefile.adapters.store import CaseStore
from casefile.adapters.store import make_engine as casefile_engine
from casefile.entrypoints.grpc_server import serve
from dispatch.adapters.casefile_client import CaseFileClient, CasefileTokens
from dispatch.adapters.oidc import OidcClient, OidcConfig
from dispatch.adapters.upload_spool import UploadSpool
from dispatch.domain.tasks import TaskState, task_id_for
from dispatch.entrypoints.phone_api import create_app
from liandong.tokens.keys import new_private_key
from liandong.tokens.verifying import AuthConfig
from tests.contract.schemathesis_hooks import OPEN_ALERT
from tests.integration.casefile.test_evidence_upload import config
from tests.unit.dispatch.harness import alert_event, build, entities

CASEFILE_KEY = "contract-test-casefile-key-0123456789abcdef"


async def main(port: int, folder: Path, key: str) -> None:
    dispatch_key = new_private_key()
    engine = casefile_engine(f"sqlite:///{folder / 'casefile.db'}")
    migrations.upgrade(engine)
    evidence = str(folder / "evidence")
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    casefile = asyncio.create_task(
        serve(
            CaseStore(engine),
            "127.0.0.1:0",
            auth=AuthConfig(
                required=True,
                hs_key=CASEFILE_KEY,
                service_keys={"dispatch": dispatch_key.public_key()},
            ),
            ready=bound.set_result,
            evidence=(open_store(evidence, folder), config(evidence)),
        )
    )
    address = f"127.0.0.1:{await asyncio.wait_for(bound, 30)}"
    harness = build(folder)
    harness.service.casefile = CaseFileClient(address, CasefileTokens(dispatch_key), timeout_s=10)
    await harness.service.on_alert_event(alert_event(OPEN_ALERT))  # opens its case in casefile
    task_id = task_id_for(OPEN_ALERT)
    for person in ("e1", "e2", "m1"):
        await harness.service.accept(task_id, person)
    # on site at the outlet, so the on-site routes (inspection record, samples, custody, lab
    # results) reach casefile's rules and are not all refused for the case's state
    outlet = entities()["outlet"]["O1"]
    here = (outlet["lat"], outlet["lon"])
    await harness.service.update_status(task_id, "e1", TaskState.EN_ROUTE, here)
    # the arrival needs two officers checked in (执法人员不得少于两人)
    for officer in ("e1", "e2"):
        await harness.service.update_status(task_id, officer, TaskState.ON_SITE, here)
    await harness.service.call_casefile(wait=True)
    uploads = UploadSpool(folder / "uploads", max_bytes=8 * 2**20, quota_bytes=64 * 2**20)
    oidc = OidcConfig.from_env()
    app = create_app(harness.service, key, uploads=uploads, oidc=OidcClient(oidc) if oidc else None)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    await server.serve()
    casefile.cancel()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]))
