"""Samples and their append-only chain of custody, from collection on site to the lab.

Sources (domain.md §4.4): HJ 493-2009 (labels, transport, receipt), field record filled on
site with a witness signature; holding times COD <= 5 d (HJ 828-2017) [M], NH3-N <= 7 d
(HJ 535-2009) [M], Cr(VI) analysed <= 24 h [V]. Facts are never refused because they are bad
news: a broken or mismatched seal, or a late receipt, is recorded and flags the sample, so the
case file shows what happened; a flagged sample can then not ground a violation finding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from casefile.domain.errors import ConflictsWithRecord, IllegalTransition, InvalidCommand

# Parameter name or HJ 212 code -> holding time from collection to analysis.
HOLDING_TIMES: dict[str, timedelta] = {
    "COD": timedelta(days=5),
    "w01018": timedelta(days=5),
    "NH3-N": timedelta(days=7),
    "w21003": timedelta(days=7),
    "Cr(VI)": timedelta(hours=24),
}

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def is_sha256_hex(text: str) -> bool:
    return _SHA256_HEX.fullmatch(text) is not None


class SampleFlag(StrEnum):
    SEAL_BROKEN = "SEAL_BROKEN"
    SEAL_MISMATCH = "SEAL_MISMATCH"
    RECEIVED_AFTER_HOLDING_TIME = "RECEIVED_AFTER_HOLDING_TIME"
    ANALYSED_AFTER_HOLDING_TIME = "ANALYSED_AFTER_HOLDING_TIME"


@dataclass(frozen=True)
class Position:
    lat: float
    lon: float


@dataclass(frozen=True)
class Handoff:
    seq: int
    from_holder: str
    to_holder: str
    to_lab: bool
    at: datetime
    seal_intact: bool
    seal_number_observed: str
    condition_note: str


@dataclass(frozen=True)
class FlagRecord:
    flag: SampleFlag
    at: datetime
    detail: str


@dataclass(frozen=True)
class LabResult:
    parameter: str
    value: Decimal
    unit: str
    method: str  # analysis standard, e.g. "HJ 828-2017"
    lab_id: str
    cma_no: str  # CMA accreditation mark of the monitoring body (2010 办法 Art. 35)
    analysed_at: datetime
    report_sha256: str
    confirmed_by: str | None = None
    confirmed_at: datetime | None = None


@dataclass(frozen=True)
class Sample:
    sample_id: str
    point: str
    container: str
    preservative: str
    seal_number: str
    parameters: tuple[str, ...]
    collected_by: str
    witnessed_by: str
    collected_at: datetime
    position: Position
    holding_time: timedelta
    custody: tuple[Handoff, ...] = ()
    flags: tuple[FlagRecord, ...] = ()
    results: tuple[LabResult, ...] = ()

    @property
    def holder(self) -> str:
        return self.custody[-1].to_holder if self.custody else self.collected_by

    @property
    def in_lab(self) -> bool:
        return bool(self.custody) and self.custody[-1].to_lab

    @property
    def lab_received_at(self) -> datetime | None:
        return next((h.at for h in self.custody if h.to_lab), None)

    @property
    def holding_due(self) -> datetime:
        return self.collected_at + self.holding_time

    @property
    def compromised(self) -> bool:
        return bool(self.flags)

    @property
    def fully_confirmed(self) -> bool:
        done = {r.parameter for r in self.results if r.confirmed_by is not None}
        return set(self.parameters) <= done


def holding_time_for(parameters: tuple[str, ...], override: timedelta | None) -> timedelta:
    """The shortest holding time among the parameters; unknown ones need an explicit value."""
    if override is not None:
        if override <= timedelta(0):
            raise InvalidCommand("holding_time must be positive")
        return override
    unknown = [p for p in parameters if p not in HOLDING_TIMES]
    if unknown:
        raise InvalidCommand(
            f"no holding time known for {', '.join(unknown)}; pass holding_time explicitly"
        )
    return min(HOLDING_TIMES[p] for p in parameters)


def new_sample(
    *,
    sample_id: str,
    point: str,
    container: str,
    preservative: str,
    seal_number: str,
    parameters: tuple[str, ...],
    collected_by: str,
    witnessed_by: str,
    collected_at: datetime,
    position: Position,
    holding_time: timedelta | None,
) -> Sample:
    for name, text in (
        ("sample_id", sample_id),
        ("point", point),
        ("container", container),
        ("preservative", preservative),
        ("collected_by", collected_by),
        ("witnessed_by", witnessed_by),
    ):
        if not text.strip():
            raise InvalidCommand(f"sample {sample_id or '?'}: {name} is required")
    if not seal_number.strip():
        raise InvalidCommand(f"sample {sample_id}: a seal number is required")
    if witnessed_by == collected_by:
        raise InvalidCommand(f"sample {sample_id}: the witness must not be the collector")
    if not parameters or len(set(parameters)) != len(parameters):
        raise InvalidCommand(f"sample {sample_id}: parameters must be non-empty and distinct")
    if not (-90.0 <= position.lat <= 90.0 and -180.0 <= position.lon <= 180.0):
        raise InvalidCommand(f"sample {sample_id}: position {position} is out of range")
    return Sample(
        sample_id=sample_id,
        point=point,
        container=container,
        preservative=preservative,
        seal_number=seal_number,
        parameters=parameters,
        collected_by=collected_by,
        witnessed_by=witnessed_by,
        collected_at=collected_at,
        position=position,
        holding_time=holding_time_for(parameters, holding_time),
    )


def hand_off(
    sample: Sample,
    *,
    from_holder: str,
    to_holder: str,
    to_lab: bool,
    at: datetime,
    seal_intact: bool,
    seal_number_observed: str,
    condition_note: str,
) -> Sample:
    """Append one hand-off; seal problems and late receipt are recorded as flags."""
    state = f"sample {sample.sample_id} held by {sample.holder}"
    if from_holder != sample.holder:
        raise IllegalTransition(
            state, f"hand off from {from_holder}", f"the current holder {sample.holder}"
        )
    if not to_holder.strip():
        raise InvalidCommand("to_holder must be a named holder")
    if to_holder == from_holder:
        raise ConflictsWithRecord(f"to_holder: {to_holder} holds the sample already")
    if sample.in_lab and not to_lab:
        raise IllegalTransition(state, "move the sample out of lab custody", "it stays in a lab")
    last_at = sample.custody[-1].at if sample.custody else sample.collected_at
    if at < last_at:
        raise ConflictsWithRecord(f"hand-off at {at.isoformat()} precedes {last_at.isoformat()}")
    if not seal_intact and not condition_note.strip():
        raise InvalidCommand("a broken seal needs a condition note describing it")
    handoff = Handoff(
        seq=len(sample.custody) + 1,
        from_holder=from_holder,
        to_holder=to_holder,
        to_lab=to_lab,
        at=at,
        seal_intact=seal_intact,
        seal_number_observed=seal_number_observed,
        condition_note=condition_note,
    )
    flags = list(sample.flags)
    if not seal_intact:
        flags.append(FlagRecord(SampleFlag.SEAL_BROKEN, at, f"hand-off {handoff.seq}"))
    if seal_number_observed != sample.seal_number:
        flags.append(
            FlagRecord(
                SampleFlag.SEAL_MISMATCH,
                at,
                f"hand-off {handoff.seq}: seal {seal_number_observed!r}, "
                f"recorded {sample.seal_number!r}",
            )
        )
    if to_lab and not sample.in_lab and at > sample.holding_due:
        flags.append(
            FlagRecord(
                SampleFlag.RECEIVED_AFTER_HOLDING_TIME,
                at,
                f"lab receipt after holding time ended {sample.holding_due.isoformat()}",
            )
        )
    return replace(sample, custody=(*sample.custody, handoff), flags=tuple(flags))


def attach_result(sample: Sample, result: LabResult) -> Sample:
    state = f"sample {sample.sample_id} held by {sample.holder}"
    if not sample.in_lab:
        raise IllegalTransition(state, "attach a lab result", "the sample in lab custody")
    if result.parameter not in sample.parameters:
        raise ConflictsWithRecord(
            f"sample {sample.sample_id} was not taken for {result.parameter!r} "
            f"(parameters: {', '.join(sample.parameters)})"
        )
    if any(r.parameter == result.parameter for r in sample.results):
        raise IllegalTransition(
            state, f"record a second {result.parameter} result", "one result per parameter"
        )
    for name, text in (("method", result.method), ("lab_id", result.lab_id)):
        if not text.strip():
            raise InvalidCommand(f"lab result: {name} is required")
    if not result.cma_no.strip():
        raise InvalidCommand("lab result: the CMA accreditation number is required")
    if not is_sha256_hex(result.report_sha256):
        raise InvalidCommand("lab result: report_sha256 must be 64 lowercase hex digits")
    if not result.value.is_finite():
        raise InvalidCommand("lab result: value must be finite")
    received = sample.lab_received_at
    if received is not None and result.analysed_at < received:
        raise ConflictsWithRecord("lab result: analysed before the lab received the sample")
    flags = sample.flags
    if result.analysed_at > sample.holding_due:
        flags = (
            *flags,
            FlagRecord(
                SampleFlag.ANALYSED_AFTER_HOLDING_TIME,
                result.analysed_at,
                f"{result.parameter} analysed after {sample.holding_due.isoformat()}",
            ),
        )
    return replace(sample, results=(*sample.results, result), flags=flags)


def confirm_result(sample: Sample, parameter: str, by: str, at: datetime) -> Sample:
    state = f"sample {sample.sample_id} held by {sample.holder}"
    for i, r in enumerate(sample.results):
        if r.parameter == parameter:
            if r.confirmed_by is not None:
                raise IllegalTransition(
                    state, f"confirm {parameter} again", "an unconfirmed result"
                )
            confirmed = replace(r, confirmed_by=by, confirmed_at=at)
            results = (*sample.results[:i], confirmed, *sample.results[i + 1 :])
            return replace(sample, results=results)
    raise IllegalTransition(state, f"confirm {parameter}", f"a recorded {parameter} result")
