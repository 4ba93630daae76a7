"""gRPC client for casefile: opening the case of an inspection task, keeping its team, and
recording what the team does on site.

Authorisation (docs/casefile.md): every call carries `authorization: Bearer <JWT>` signed
with dispatch's own ES256 key (header `kid=dispatch`), always with dispatch's own identity
(`sub=dispatch`, role `service`). OpenCase and UpdateTeam go out in that name. A field
record (RecordArrival, RecordSiteNote, UploadEvidence) is something a team member did, and a
download (DownloadEvidence) is read with that person's access, so its token also
names that person and the role the phone API authenticated them in (`act: {sub, roles}`);
casefile accepts it only if that person is on the case team in that role, and its audit
chain keeps both identities. Dispatch never signs a token in an officer's own name, and its
key cannot sign one casefile would take as a person's or a manager's. The managers' console
reads and exports cases acting for the signed-in manager (`act: {sub, roles: [manager],
jurisdiction}`), which casefile allows for reads only, within that jurisdiction, and for
passing on that manager's cancellation of a task (RecordTaskCancelled).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric import ec

from liandong.events import to_timestamp
from liandong.v1 import casefile_pb2, casefile_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_SUBJECT = "dispatch"
_TTL = timedelta(minutes=5)  # one call (with its gRPC deadline), never a session
# roster roles -> casefile roles
CASEFILE_ROLES = {"ENFORCEMENT": "officer", "MONITORING": "monitoring"}


class CasefileTokens:
    """Mints casefile bearer tokens with dispatch's own ES256 private key (header kid=dispatch);
    casefile verifies them with dispatch's public key only, and a token under that key is
    never more than role SERVICE acting for an officer or monitoring staff."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, service: str = SERVICE_SUBJECT) -> None:
        self.key = key
        self.service_name = service

    @classmethod
    def from_env(cls) -> CasefileTokens:
        """LIANDONG_DISPATCH_CASEFILE_KEY (a PEM private key); unset: the embedded key pair
        under .state, created on first use (casefile's default trusts its public half)."""
        from liandong.tokens.keys import embedded_service_key, load_private_key, local_key_pair

        path = os.environ.get("LIANDONG_DISPATCH_CASEFILE_KEY", "").strip()
        if path:
            return cls(load_private_key(Path(path)))
        private = embedded_service_key(SERVICE_SUBJECT)
        local_key_pair(private)  # casefile may be creating it at this moment: one pair wins
        log.warning(
            "LIANDONG_DISPATCH_CASEFILE_KEY unset: signing casefile tokens with the embedded "
            "key %s (one machine only; elsewhere use `liandong tokens service-key`)",
            private,
        )
        return cls(load_private_key(private))

    def _token(self, act: dict[str, Any] | None = None) -> str:
        from liandong.tokens.issuing import issue_service

        return issue_service(
            self.key, service=self.service_name, ttl=_TTL, now=datetime.now(UTC), act=act
        )

    def service(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self._token()}"),)

    def on_behalf(self, person_id: str, role: str) -> tuple[tuple[str, str], ...]:
        """The service's token acting for `person_id` in `role` (ENFORCEMENT, MONITORING).
        Any other role names none: casefile then refuses the call (PERMISSION_DENIED)."""
        casefile_role = CASEFILE_ROLES.get(role.upper())
        act = {"sub": person_id, "roles": [casefile_role] if casefile_role else []}
        return (("authorization", f"Bearer {self._token(act)}"),)

    def for_manager(
        self, person_id: str, jurisdiction: Sequence[str]
    ) -> tuple[tuple[str, str], ...]:
        """Acting for a duty manager, to read cases of their jurisdiction or pass on their
        cancellation of a task: casefile allows such a token nothing else (docs/casefile.md)."""
        act = {"sub": person_id, "roles": ["manager"], "jurisdiction": list(jurisdiction)}
        return (("authorization", f"Bearer {self._token(act)}"),)


class CaseFileClient:
    def __init__(
        self, address: str, tokens: CasefileTokens | None = None, timeout_s: float = 10
    ) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = casefile_pb2_grpc.CaseFileStub(self._channel)
        self.tokens = tokens
        self.timeout_s = timeout_s

    async def open_case(
        self,
        *,
        task_id: str,
        alert_ids: list[str],
        enterprise_id: str,
        outlet_id: str,
        county: str,
        team: list[dict[str, str]],
        discovered_at: datetime,
        summary: str,
    ) -> casefile_pb2.Case:
        request = casefile_pb2.OpenCaseRequest(
            # The task id doubles as the request id: a retried open returns the same case.
            request_id=f"open:{task_id}",
            task_id=task_id,
            alert_ids=alert_ids,
            enterprise_id=enterprise_id,
            outlet_id=outlet_id,
            county=county,
            team=[casefile_pb2.Party(**p) for p in team],
            discovered_at=to_timestamp(discovered_at),
            summary=summary,
            opened_by=SERVICE_SUBJECT,
        )
        metadata = self.tokens.service() if self.tokens else None
        return await self._stub.OpenCase(
            request, timeout=self.timeout_s, wait_for_ready=True, metadata=metadata
        )

    async def record_arrival(
        self,
        *,
        request_id: str,
        case_id: str,
        arrived_at: datetime,
        officers_present: Sequence[str],
        position: tuple[float, float] | None,
        on_behalf_of: str,
        role: str = "ENFORCEMENT",
    ) -> casefile_pb2.Case:
        request = casefile_pb2.RecordArrivalRequest(
            request_id=request_id,
            case_id=case_id,
            arrived_at=to_timestamp(arrived_at),
            officers_present=list(officers_present),
        )
        if position is not None:
            request.position.CopyFrom(casefile_pb2.SitePosition(lat=position[0], lon=position[1]))
        metadata = self.tokens.on_behalf(on_behalf_of, role) if self.tokens else None
        return await self._stub.RecordArrival(
            request, timeout=self.timeout_s, wait_for_ready=True, metadata=metadata
        )

    async def update_team(
        self, *, request_id: str, case_id: str, team: list[dict[str, str]], reason: str
    ) -> casefile_pb2.Case:
        request = casefile_pb2.UpdateTeamRequest(
            request_id=request_id,
            case_id=case_id,
            team=[casefile_pb2.Party(**p) for p in team],
            reason=reason,
        )
        metadata = self.tokens.service() if self.tokens else None
        return await self._stub.UpdateTeam(
            request, timeout=self.timeout_s, wait_for_ready=True, metadata=metadata
        )

    async def record_site_note(
        self,
        *,
        request_id: str,
        case_id: str,
        at: datetime,
        text: str,
        by: str,
        role: str,
        position: tuple[float, float] | None,
    ) -> casefile_pb2.Case:
        request = casefile_pb2.RecordSiteNoteRequest(
            request_id=request_id, case_id=case_id, at=to_timestamp(at), text=text, by=by
        )
        if position is not None:
            request.position.CopyFrom(casefile_pb2.SitePosition(lat=position[0], lon=position[1]))
        metadata = self.tokens.on_behalf(by, role) if self.tokens else None
        return await self._stub.RecordSiteNote(
            request, timeout=self.timeout_s, wait_for_ready=True, metadata=metadata
        )

    async def record_task_cancelled(
        self,
        *,
        request_id: str,
        case_id: str,
        task_id: str,
        cancelled_at: datetime,
        reason: str,
        manager_id: str,
        jurisdiction: Sequence[str],
    ) -> casefile_pb2.Case:
        """The duty manager's cancellation of the case's task, sent acting for them (casefile
        takes it only so, and records them as who cancelled)."""
        request = casefile_pb2.RecordTaskCancelledRequest(
            request_id=request_id,
            case_id=case_id,
            task_id=task_id,
            cancelled_at=to_timestamp(cancelled_at),
            reason=reason,
        )
        metadata = self.tokens.for_manager(manager_id, jurisdiction) if self.tokens else None
        return await self._stub.RecordTaskCancelled(
            request, timeout=self.timeout_s, wait_for_ready=True, metadata=metadata
        )

    async def field_call(
        self, method: str, request: Any, *, person_id: str, role: str
    ) -> casefile_pb2.Case:
        """A field record (RecordInspection, AddEvidence, RecordSample, HandOffCustody,
        RecordLabResult, ConfirmResult) passed on for the person the phone API signed in;
        casefile decides whether that person may, and its refusal comes back as the
        grpc.aio.AioRpcError."""
        metadata = self.tokens.on_behalf(person_id, role) if self.tokens else None
        call = getattr(self._stub, method)
        return await call(request, timeout=self.timeout_s, metadata=metadata)  # type: ignore[no-any-return]

    async def get_case_for(self, case_id: str, *, person_id: str, role: str) -> casefile_pb2.Case:
        """The case as `person_id` may read it (monitoring staff: samples and results)."""
        metadata = self.tokens.on_behalf(person_id, role) if self.tokens else None
        return await self._stub.GetCase(
            casefile_pb2.GetCaseRequest(case_id=case_id), timeout=self.timeout_s, metadata=metadata
        )

    async def cases_of_enterprise(
        self, enterprise_id: str, limit: int = 50
    ) -> list[casefile_pb2.Case]:
        """Earlier cases of an enterprise, for a team's site history (service identity)."""
        metadata = self.tokens.service() if self.tokens else None
        answer = await self._stub.ListCases(
            casefile_pb2.ListCasesRequest(enterprise_id=enterprise_id, page_size=limit),
            timeout=self.timeout_s,
            metadata=metadata,
        )
        return list(answer.cases)

    # ---- reads for a duty manager's console: acting for the manager, reads only ------------

    def _for_manager(self, person_id: str, jurisdiction: Sequence[str]) -> Any:
        return self.tokens.for_manager(person_id, jurisdiction) if self.tokens else None

    async def cases_due(
        self,
        *,
        person_id: str,
        jurisdiction: Sequence[str],
        due_within_days: int,
        page_size: int = 200,
    ) -> list[casefile_pb2.Case]:
        """Open cases of the manager's jurisdiction with a legal clock due within the days or
        overdue, overdue first (casefile orders and scopes them)."""
        request = casefile_pb2.ListCasesRequest(
            due_within_days=due_within_days, page_size=page_size
        )
        reply = await self._stub.ListCases(
            request, timeout=self.timeout_s, metadata=self._for_manager(person_id, jurisdiction)
        )
        return list(reply.cases)

    async def case_for_manager(
        self, *, person_id: str, jurisdiction: Sequence[str], case_id: str
    ) -> tuple[casefile_pb2.Case, casefile_pb2.VerifyCaseResponse]:
        """The case and its audit verification, as casefile lets this manager read them."""
        metadata = self._for_manager(person_id, jurisdiction)
        request = casefile_pb2.GetCaseRequest(case_id=case_id)
        case = await self._stub.GetCase(request, timeout=self.timeout_s, metadata=metadata)
        verified = await self._stub.VerifyCase(request, timeout=self.timeout_s, metadata=metadata)
        return case, verified

    def bundle_for_manager(
        self, *, person_id: str, jurisdiction: Sequence[str], case_id: str
    ) -> Any:
        """The stream of BundleChunks of the case's signed bundle (a grpc.aio call: iterate
        it, cancel() to stop), exported as casefile lets this manager read the case."""
        return self._stub.ExportBundle(
            casefile_pb2.ExportBundleRequest(case_id=case_id),
            metadata=self._for_manager(person_id, jurisdiction),
            timeout=max(self.timeout_s, 600),  # a bundle carries every evidence file
        )

    async def upload_evidence(
        self,
        *,
        request_id: str,
        case_id: str,
        evidence_id: str,
        kind: str,
        sha256: str,
        size: int,
        media_type: str,
        captured_at: datetime,
        captured_by: str,
        role: str,
        description: str,
        position: tuple[float, float] | None,
        path: Path,
        chunk_bytes: int = 512 << 10,
    ) -> casefile_pb2.UploadEvidenceResponse:
        """Streams the file at `path` to casefile's UploadEvidence acting for `captured_by`."""
        header = casefile_pb2.EvidenceUpload(
            request_id=request_id,
            case_id=case_id,
            evidence_id=evidence_id,
            kind=kind,
            sha256=sha256,
            size_bytes=size,
            media_type=media_type,
            captured_at=to_timestamp(captured_at),
            captured_by=captured_by,
            description=description,
        )
        if position is not None:
            header.position.CopyFrom(casefile_pb2.SitePosition(lat=position[0], lon=position[1]))

        async def messages() -> Any:
            yield casefile_pb2.UploadEvidenceRequest(header=header)
            with open(path, "rb") as f:
                while chunk := f.read(chunk_bytes):
                    yield casefile_pb2.UploadEvidenceRequest(chunk=chunk)

        metadata = self.tokens.on_behalf(captured_by, role) if self.tokens else None
        return await self._stub.UploadEvidence(
            messages(), timeout=max(self.timeout_s, 120), wait_for_ready=True, metadata=metadata
        )

    def download_evidence(
        self,
        *,
        case_id: str,
        evidence_id: str,
        person_id: str,
        role: str,
        offset: int = 0,
        length: int = 0,
        preview: bool = False,
    ) -> Any:
        """The stream of EvidenceChunks (a grpc.aio call: iterate it, cancel() to stop),
        acting for `person_id`: casefile applies that person's access to the case."""
        metadata = self.tokens.on_behalf(person_id, role) if self.tokens else None
        return self._stub.DownloadEvidence(
            casefile_pb2.DownloadEvidenceRequest(
                case_id=case_id,
                evidence_id=evidence_id,
                offset=offset,
                length=length,
                preview=preview,
            ),
            metadata=metadata,
            wait_for_ready=True,
        )

    async def close(self) -> None:
        await self._channel.close()
