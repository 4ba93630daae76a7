"""gRPC client for casefile: opening the case of an inspection task, keeping its team, and
recording what the team does on site.

Authorisation (docs/casefile.md): every call carries `authorization: Bearer <JWT>` when a
signing key is configured, always with dispatch's own identity (`sub=dispatch`, role
`service`). OpenCase and UpdateTeam go out in that name. A field record (RecordArrival,
RecordSiteNote) is something a team member did, so its token also names that person and the
role the phone API authenticated them in (`act: {sub, roles}`); casefile accepts it only if
that person is on the case team in that role, and its audit chain keeps both identities.
Dispatch never signs a token in an officer's own name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from liandong.events import to_timestamp
from liandong.v1 import casefile_pb2, casefile_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_SUBJECT = "dispatch"
_TTL = timedelta(minutes=5)  # one call (with its gRPC deadline), never a session
# roster roles -> casefile roles
CASEFILE_ROLES = {"ENFORCEMENT": "officer", "MONITORING": "monitoring"}


class CasefileTokens:
    """Mints casefile bearer tokens with casefile's own issuing helper and HS256 key."""

    def __init__(self, key: str) -> None:
        self.key = key

    @classmethod
    def from_env(cls) -> CasefileTokens | None:
        """casefile's key (LIANDONG_JWT_KEY or its local key file); None when casefile
        verifies against an OIDC provider (LIANDONG_JWKS_URL), whose tokens dispatch cannot
        mint: calls then go without a token (accepted only while LIANDONG_CASEFILE_AUTH=off)."""
        if os.environ.get("LIANDONG_JWKS_URL"):
            log.warning("LIANDONG_JWKS_URL is set: dispatch sends casefile calls without tokens")
            return None
        from casefile.config import key_file, signing_key

        try:
            return cls(signing_key())
        except FileExistsError:  # casefile created the key file at the same moment
            return cls(key_file().read_text().strip())

    def _token(self, act: dict[str, Any] | None = None) -> str:
        from casefile.adapters.tokens import issue

        return issue(
            self.key,
            sub=SERVICE_SUBJECT,
            roles=["service"],
            ttl=_TTL,
            now=datetime.now(UTC),
            act=act,
        )

    def service(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self._token()}"),)

    def on_behalf(self, person_id: str, role: str) -> tuple[tuple[str, str], ...]:
        """The service's token acting for `person_id` in `role` (ENFORCEMENT, MONITORING)."""
        act = {"sub": person_id, "roles": [CASEFILE_ROLES.get(role.upper(), role)]}
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

    async def close(self) -> None:
        await self._channel.close()
