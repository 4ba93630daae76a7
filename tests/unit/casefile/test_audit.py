from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casefile.domain.audit import (
    GENESIS,
    Anchor,
    AuditEntry,
    ChainProblem,
    chain_entry,
    entry_hash,
    export_bundle,
    verify_bundle,
    verify_case_chain,
    verify_chain,
    verify_evidence_file,
)
from casefile.domain.canonical import canonical_json
from casefile.domain.records import CaseChange
from tests.unit.casefile.scenario import MAIN_PATH, run

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def build(n: int, cases: int = 7) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    heads: dict[str, AuditEntry] = {}
    prev = None
    for i in range(n):
        case_id = f"C{i % cases}"
        e = chain_entry(
            prev,
            case_prev=heads.get(case_id),
            case_id=case_id,
            kind="AddEvidence",
            payload={"n": i, "fine": Decimal("1.50"), "note": '现场照片 "x"'},
            actor=f"o{i % 3}",
            at=T0 + timedelta(seconds=i),
        )
        entries.append(e)
        heads[case_id] = e
        prev = e
    return entries


CHAIN = build(1000)
HEAD = Anchor(CHAIN[-1].seq, CHAIN[-1].hash)


def test_entry_hash_is_sha256_of_the_canonical_object() -> None:
    e = CHAIN[1]
    body = {
        "actor": e.actor,
        "at": "2026-03-02T00:00:01.000000Z",
        "case_id": "C1",
        "case_prev_hash": GENESIS,
        "case_seq": 1,
        "kind": "AddEvidence",
        "payload": {"fine": "1.50", "n": 1, "note": '现场照片 "x"'},
        "prev_hash": CHAIN[0].hash,
        "seq": 2,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert e.hash == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert e.payload_json == '{"fine":"1.50","n":1,"note":"现场照片 \\"x\\""}'
    assert e.at_datetime == T0 + timedelta(seconds=1)


def test_case_thread_links_entries_of_one_case() -> None:
    c1 = [e for e in CHAIN if e.case_id == "C1"]
    assert [e.case_seq for e in c1[:3]] == [1, 2, 3]
    assert c1[1].case_prev_hash == c1[0].hash
    assert verify_case_chain(c1, "C1").ok


def test_valid_chain_verifies() -> None:
    report = verify_chain(CHAIN, expected_head=HEAD)
    assert report.ok and report.checked == 1000 and report.head == HEAD


def test_edit_one_payload() -> None:
    chain = list(CHAIN)
    chain[499] = replace(
        chain[499], payload_json=chain[499].payload_json.replace('"n":499', '"n":9')
    )
    report = verify_chain(chain)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 500, ChainProblem.EDITED)


def test_edit_with_rehash_breaks_the_next_link() -> None:
    chain = list(CHAIN)
    forged = replace(chain[499], actor="intruder")
    chain[499] = replace(forged, hash=entry_hash(forged))
    report = verify_chain(chain)
    assert (report.first_bad_seq, report.problem) == (500, ChainProblem.BROKEN_LINK)


def test_delete_one() -> None:
    chain = CHAIN[:499] + CHAIN[500:]
    report = verify_chain(chain)
    assert (report.first_bad_seq, report.problem) == (500, ChainProblem.DELETED)
    assert report.head == Anchor(499, CHAIN[498].hash)


def test_delete_last_needs_an_anchor() -> None:
    assert verify_chain(CHAIN[:-1]).ok
    report = verify_chain(CHAIN[:-1], expected_head=HEAD)
    assert (report.first_bad_seq, report.problem) == (1000, ChainProblem.TRUNCATED)


def test_swap_two() -> None:
    chain = list(CHAIN)
    chain[499], chain[500] = chain[500], chain[499]
    report = verify_chain(chain)
    assert (report.first_bad_seq, report.problem) == (500, ChainProblem.REORDERED)


def test_insert_one_forged_but_well_hashed() -> None:
    forged = chain_entry(
        CHAIN[498],
        case_prev=None,
        case_id="C-forged",
        kind="AddEvidence",
        payload={"n": -1},
        actor="intruder",
        at=T0,
    )
    assert forged.seq == 500
    chain = [*CHAIN[:499], forged, *CHAIN[499:]]
    report = verify_chain(chain)
    assert (report.first_bad_seq, report.problem) == (500, ChainProblem.INSERTED)


def test_insert_a_replayed_copy() -> None:
    chain = [*CHAIN[:499], CHAIN[299], *CHAIN[499:]]
    report = verify_chain(chain)
    assert (report.first_bad_seq, report.problem) == (500, ChainProblem.INSERTED)


def test_checkpoint_verifies_a_suffix() -> None:
    report = verify_chain(CHAIN[500:], after=Anchor(500, CHAIN[499].hash))
    assert report.ok and report.checked == 500
    bad = verify_chain(CHAIN[500:], after=Anchor(500, GENESIS))
    assert (bad.first_bad_seq, bad.problem) == (500, ChainProblem.BROKEN_LINK)


SMALL = build(40, cases=3)
SMALL_HEAD = Anchor(SMALL[-1].seq, SMALL[-1].hash)
FIELDS = [
    "seq",
    "case_id",
    "case_seq",
    "kind",
    "payload_json",
    "actor",
    "at",
    "prev_hash",
    "case_prev_hash",
    "hash",
]


def _mutate_field(e: AuditEntry, field: str, salt: int) -> AuditEntry:
    value = getattr(e, field)
    changes: dict[str, object] = {}
    if isinstance(value, int):
        changes[field] = value + 1 + salt
        return replace(e, **changes)  # type: ignore[arg-type]
    if field == "payload_json":
        return replace(e, payload_json=canonical_json({"n": -1 - salt}))
    return replace(e, **{field: value + "x" * (salt + 1)})


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["edit", "delete", "swap", "insert_copy", "insert_forged"]),
    i=st.integers(0, len(SMALL) - 1),
    j=st.integers(0, len(SMALL) - 1),
    field=st.sampled_from(FIELDS),
    salt=st.integers(0, 5),
)
def test_any_single_mutation_is_detected(kind: str, i: int, j: int, field: str, salt: int) -> None:
    chain = list(SMALL)
    if kind == "edit":
        chain[i] = _mutate_field(chain[i], field, salt)
    elif kind == "delete":
        del chain[i]
    elif kind == "swap":
        if i == j:
            j = (i + 1) % len(chain)
        chain[i], chain[j] = chain[j], chain[i]
    elif kind == "insert_copy":
        chain.insert(i, SMALL[j])
    else:
        prev = chain[i - 1] if i else None
        forged = chain_entry(
            prev, case_prev=None, case_id="Z", kind="K", payload={"s": salt}, actor="x", at=T0
        )
        chain.insert(i, forged)
    report = verify_chain(chain, expected_head=SMALL_HEAD)
    assert not report.ok
    assert report.problem is not None and report.first_bad_seq is not None


# ---- bundles -------------------------------------------------------------------------------


def _case_chain() -> tuple[object, list[AuditEntry]]:
    changes: list[CaseChange] = []
    case = run(MAIN_PATH, on_change=changes.append)
    entries: list[AuditEntry] = []
    heads: dict[str, AuditEntry] = {}
    prev = None
    for n, ch in enumerate(changes):
        if n % 2:  # another case's entries interleave in the global chain
            other = chain_entry(
                prev,
                case_prev=heads.get("X"),
                case_id="X",
                kind="Noise",
                payload={},
                actor="a",
                at=ch.at,
            )
            heads["X"] = other
            entries.append(other)
            prev = other
        e = chain_entry(
            prev,
            case_prev=heads.get(ch.case_id),
            case_id=ch.case_id,
            kind=ch.kind,
            payload=ch.payload,
            actor=ch.actor,
            at=ch.at,
        )
        heads[ch.case_id] = e
        entries.append(e)
        prev = e
    return case, entries


def test_bundle_round_trip_through_json() -> None:
    case, entries = _case_chain()
    assert verify_chain(entries).ok
    bundle = export_bundle(case, entries, case.evidence)  # type: ignore[attr-defined]
    assert [e["case_id"] for e in bundle["entries"]] == ["C1"] * len(MAIN_PATH)
    reread = json.loads(json.dumps(bundle, ensure_ascii=False))
    report = verify_bundle(reread)
    assert report.ok, report.detail
    assert report.head is not None and report.head.seq == len(MAIN_PATH)


def test_bundle_tampering_is_detected() -> None:
    case, entries = _case_chain()
    good = export_bundle(case, entries, case.evidence)  # type: ignore[attr-defined]

    edited = copy.deepcopy(good)
    edited["case"]["county_code"] = "110101"
    assert verify_bundle(edited).problem is ChainProblem.EDITED  # bundle hash

    def rehash(b: dict) -> dict:
        from casefile.domain.audit import _bundle_hash

        b["bundle_sha256"] = _bundle_hash(b)
        return b

    entry_edit = copy.deepcopy(good)
    entry_edit["entries"][3]["actor"] = "someone-else"
    report = verify_bundle(rehash(entry_edit))
    assert (report.problem, report.first_bad_seq) == (ChainProblem.EDITED, 4)

    dropped = copy.deepcopy(good)
    del dropped["entries"][5]
    report = verify_bundle(rehash(dropped))
    assert (report.problem, report.first_bad_seq) == (ChainProblem.DELETED, 6)

    state = copy.deepcopy(good)
    state["case"]["state"] = "FILED"
    assert "differs from the chain" in verify_bundle(rehash(state)).detail

    evidence = copy.deepcopy(good)
    evidence["evidence"][0]["sha256"] = "00" * 32
    assert "evidence 'E1' digest" in verify_bundle(rehash(evidence)).detail

    no_evidence = copy.deepcopy(good)
    no_evidence["evidence"] = []
    assert verify_bundle(rehash(no_evidence)).problem is ChainProblem.DELETED

    truncated = copy.deepcopy(good)
    truncated["entries"] = truncated["entries"][:-1]
    assert verify_bundle(rehash(truncated)).problem is ChainProblem.TRUNCATED
    truncated["head"] = {"case_seq": 15, "hash": truncated["entries"][-1]["hash"]}
    assert "differs from the chain" in verify_bundle(rehash(truncated)).detail
    truncated["case"]["state"] = "ENFORCED"
    assert verify_bundle(rehash(truncated)).ok  # self-consistent rewrite ...
    outside = Anchor(good["head"]["case_seq"], good["head"]["hash"])
    assert not verify_bundle(rehash(truncated), expected_head=outside).ok  # ... needs an anchor

    malformed = copy.deepcopy(good)
    malformed["entries"][0]["seq"] = "1"
    assert verify_bundle(rehash(malformed)).problem is ChainProblem.MALFORMED
    assert verify_bundle({"format": "other"}).problem is ChainProblem.MALFORMED


def test_evidence_file_check() -> None:
    case, entries = _case_chain()
    bundle = export_bundle(case, entries, case.evidence)  # type: ignore[attr-defined]
    # scenario evidence E1 recorded with digest "ab"*32, which is no file's real sha256
    assert not verify_evidence_file(bundle, "E1", b"photo bytes")
    assert not verify_evidence_file(bundle, "E9", b"")


@pytest.mark.parametrize("value", [float("nan"), {1: "x"}, {"a"}])
def test_canonical_encoding_refuses_ambiguous_values(value: object) -> None:
    with pytest.raises(ValueError):
        canonical_json(value)


def test_canonical_encoding_rules() -> None:
    cst = datetime(2026, 3, 2, 9, tzinfo=UTC) + timedelta()
    assert canonical_json(
        {"b": Decimal("1.50"), "a": cst, "c": 0.1, "d": timedelta(days=1, seconds=2)}
    ) == ('{"a":"2026-03-02T09:00:00.000000Z","b":"1.50","c":0.1,"d":"P1DT2.000000S"}')
    with pytest.raises(ValueError, match="naive"):
        canonical_json(datetime(2026, 3, 2))
