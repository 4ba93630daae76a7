"""`liandong casefile verify|export` (reads the database directly), `liandong tokens issue`
and `liandong tokens service-key`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from casefile.adapters.bundle_archive import Written
from casefile.adapters.codec import case_from_doc
from casefile.adapters.store import (
    UNVOUCHING_KINDS,
    AuditRow,
    CaseFileRow,
    make_engine,
    row_problem,
    to_entry,
)
from casefile.adapters.tables import AuditHeadRow
from casefile.domain.audit import Anchor, AuditEntry, ChainProblem, VerifyReport, export_bundle
from casefile.domain.audit import verify_chain as verify_entries
from liandong import settings as settings_mod

console = Console()
casefile_app = typer.Typer(help="Case file integrity: verify the audit chain, export bundles.")
tokens_app = typer.Typer(
    help="Bearer tokens for the casefile API (local signing key) and services' own key pairs."
)
BATCH = 20_000


def verify_database(
    url: str, *, show_progress: bool = False, published: dict[int, str] | None = None
) -> tuple[VerifyReport, list[str]]:
    """Verifies the global chain in batches, then that every case document is the one the
    chain's last entry of that case vouches for. Returns the chain report and case problems.
    `published`: the (seq -> hash) of chain entries read from casefile.events; every one
    must be in the database unchanged (a rewrite of the whole tail, head row included, shows)."""
    engine = make_engine(url)
    problems: list[str] = []
    with Session(engine) as s:
        total = s.exec(select(func.count()).select_from(AuditRow)).one()
        report = VerifyReport(True, 0)
        anchor: Anchor | None = None
        checked = 0
        last_payload: dict[str, str] = {}  # each case's last audit entry's payload
        progress = Progress(
            TextColumn("verifying audit chain"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not show_progress,
        )
        with progress:
            task = progress.add_task("chain", total=total)
            offset = 0
            while True:
                rows = s.exec(
                    select(AuditRow).order_by(AuditRow.seq).offset(offset).limit(BATCH)  # type: ignore[arg-type]
                ).all()
                if not rows:
                    break
                offset += len(rows)
                entries = [to_entry(r) for r in rows]
                part = verify_entries(entries, after=anchor)
                if part.ok and published:
                    part = _against_published(entries, published, part)
                checked += part.checked
                if not part.ok:
                    report = VerifyReport(
                        False, checked, part.first_bad_seq, part.problem, part.detail, part.head
                    )
                    break
                anchor = part.head
                for e in entries:
                    if e.kind not in UNVOUCHING_KINDS:
                        last_payload[e.case_id] = e.payload_json
                progress.update(task, advance=len(rows))
        if report.ok:
            report = _against_head_row(s.get(AuditHeadRow, 1), anchor, checked)
        if report.ok and published:
            end = anchor.seq if anchor else 0
            beyond = max(published)
            if beyond > end:
                report = VerifyReport(
                    False,
                    checked,
                    end + 1,
                    ChainProblem.TRUNCATED,
                    f"casefile.events published entry {beyond}; the database's chain ends at {end}",
                    anchor,
                )
        if report.ok:
            for row in s.exec(select(CaseFileRow)).all():
                problem = row_problem(row, last_payload.get(row.case_id))
                if problem:
                    problems.append(f"case {row.case_id}: {problem}")
            missing = set(last_payload) - set(s.exec(select(CaseFileRow.case_id)).all())
            problems.extend(f"case {c}: in the chain but deleted" for c in sorted(missing))
    engine.dispose()
    return report, problems


def _against_published(
    entries: list[AuditEntry], published: dict[int, str], part: VerifyReport
) -> VerifyReport:
    for e in entries:
        sent = published.get(e.seq)
        if sent is not None and sent != e.hash:
            detail = (
                f"entry {e.seq} differs from the hash casefile.events published for it: "
                "the chain was rewritten from there on"
            )
            return VerifyReport(False, part.checked, e.seq, ChainProblem.EDITED, detail, part.head)
    return part


async def read_published(bootstrap: str, topic: str) -> dict[int, str]:
    """Every (audit seq -> hash) published on casefile.events, read from the beginning to
    the end offsets at the time of the call."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from liandong.v1 import casefile_pb2

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=10_000
    )
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return {}
        # without a subscription the consumer keeps no metadata of the topic: ask for it
        metadata = await consumer._client.fetch_all_metadata()
        partitions = metadata.partitions_for_topic(topic) or set()
        parts = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not parts:
            return {}
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        published: dict[int, str] = {}
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(*parts, timeout_ms=1000)
            for records in batch.values():
                for r in records:
                    event = casefile_pb2.CaseEvent.FromString(r.value)
                    if event.audit_seq:
                        published[event.audit_seq] = event.audit_hash
        return published
    finally:
        await consumer.stop()


def _against_head_row(head: AuditHeadRow | None, end: Anchor | None, checked: int) -> VerifyReport:
    """The chain must end where the audit_head row (which every write updates in the same
    transaction) says: entries deleted from the tail behind it are a truncation."""
    last = end.seq if end else 0
    if head is None:
        if end is None:
            return VerifyReport(True, checked)
        return VerifyReport(
            False, checked, last, ChainProblem.TRUNCATED, "the audit_head row is missing", end
        )
    if head.seq > last:
        detail = f"chain ends at {last}; the audit_head row names {head.seq}"
        return VerifyReport(False, checked, last + 1, ChainProblem.TRUNCATED, detail, end)
    if head.seq < last:
        detail = f"entries beyond the audit_head row's {head.seq}"
        return VerifyReport(False, checked, head.seq + 1, ChainProblem.INSERTED, detail, end)
    if end is not None and head.hash != end.hash:
        detail = f"entry {last} differs from the audit_head row's hash"
        return VerifyReport(False, checked, last, ChainProblem.BROKEN_LINK, detail, end)
    return VerifyReport(True, checked, head=end)


def export_case(url: str, case_id: str) -> dict[str, object]:
    """The JSON bundle of format 1 (case, entries, evidence digests); kept for the library
    API. The CLI exports signed archives (`export_archive`)."""
    engine = make_engine(url)
    with Session(engine) as s:
        row = s.get(CaseFileRow, case_id)
        if row is None:
            raise KeyError(case_id)
        case = case_from_doc(row.doc)
        rows = s.exec(
            select(AuditRow).where(AuditRow.case_id == case_id).order_by(AuditRow.seq)  # type: ignore[arg-type]
        ).all()
        bundle = export_bundle(case, [to_entry(r) for r in rows], case.evidence)
    engine.dispose()
    return bundle


def export_archive(url: str, case_id: str, out: Path, *, force: bool = False) -> Written:
    """The signed bundle archive of one case (adapters/bundle_archive), evidence from the
    store LIANDONG_EVIDENCE_STORE names."""
    from casefile.adapters.bundle_archive import bundle_key, write_bundle
    from casefile.adapters.bundle_source import read_bundle_source
    from casefile.entrypoints.evidence_calls import store_from_env
    from casefile.evidence_config import EvidenceConfig, bundle_key_path

    engine = make_engine(url)
    try:
        # one snapshot (as ExportBundle reads it): a write meanwhile cannot split doc and chain
        source = read_bundle_source(engine, case_id)
    finally:
        engine.dispose()
    if source is None:
        raise KeyError(case_id)
    store = store_from_env(EvidenceConfig.from_env())
    return write_bundle(
        out,
        case_id=case_id,
        case_doc=source.doc,
        record=source.record,
        entries=source.entries,
        evidence=source.case.evidence,
        store=store,
        key=bundle_key(bundle_key_path()),
        force=force,
    )


def verify_store(url: str | None = None) -> tuple[int, list[str], list[str]]:
    """Re-hashes every object of the evidence store (LIANDONG_EVIDENCE_STORE). Returns the
    number checked, the damaged keys (bytes no longer match their key) and, when a database
    is given, the evidence items whose content the store should hold (uploaded) but does not."""
    from casefile.adapters.evidence_store import rehash
    from casefile.entrypoints.evidence_calls import store_from_env
    from casefile.evidence_config import EvidenceConfig

    store = store_from_env(EvidenceConfig.from_env())
    damaged: list[str] = []
    held: set[str] = set()
    progress = Progress(
        TextColumn(f"re-hashing evidence ({store.name})"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
    )
    keys = list(store.keys())
    with progress:
        task = progress.add_task("objects", total=len(keys))
        for key in keys:
            held.add(key)
            if rehash(store, key) != key:
                damaged.append(key)
            progress.update(task, advance=1)
    missing: list[str] = []
    if url:
        engine = make_engine(url)
        with Session(engine) as s:
            for row in s.exec(select(CaseFileRow)).all():
                for item in case_from_doc(row.doc).evidence:
                    if item.content is not None and item.sha256 not in held:
                        missing.append(f"{row.case_id} {item.evidence_id} {item.sha256}")
        engine.dispose()
    return len(keys), damaged, missing


def _say(report: VerifyReport, problems: list[str]) -> None:
    if report.ok and not problems:
        head = f" head {report.head.seq} {report.head.hash[:16]}..." if report.head else ""
        console.print(f"[green]OK[/green]: {report.checked} entries verified;{head}")
        return
    if not report.ok:
        problem = report.problem.value if isinstance(report.problem, ChainProblem) else "?"
        console.print(
            f"[red]TAMPERED[/red]: {problem} at seq {report.first_bad_seq}: {report.detail}"
        )
    for p in problems:
        console.print(f"[red]TAMPERED[/red]: {p}")


# exit codes of `verify` (docs/casefile.md)
VERIFIED, FAILED, USAGE, UNREADABLE = 0, 1, 2, 3


@casefile_app.command("verify")
def verify(
    bundle: Annotated[
        Path | None, typer.Option(help="verify an exported bundle archive instead")
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            help="the bundle key's public half (default: LIANDONG_CASEFILE_BUNDLE_KEY + .pub)"
        ),
    ] = None,
    evidence: Annotated[
        bool, typer.Option("--evidence", help="re-hash every object of the evidence store")
    ] = False,
    db: Annotated[str, typer.Option(help="database URL (default LIANDONG_CASEFILE_DB)")] = "",
    events: Annotated[
        bool,
        typer.Option(
            "--events",
            help="also compare the chain with the (seq, hash) published on casefile.events",
        ),
    ] = False,
) -> None:
    """Verify the audit chain (and every case row) in the database, a bundle archive
    (--bundle), or the evidence store (--evidence).

    Exit status: 0 verified; 1 verification failed (each problem named: edited, deleted,
    reordered, truncated, differing from casefile.events, a damaged object or bundle file);
    2 usage error; 3 the input could not be read (missing file, not an archive, database,
    broker or S3 server unreachable)."""
    if bundle is not None and (evidence or events):
        console.print("[red]--bundle is a check of its own (not with --evidence or --events)[/red]")
        raise typer.Exit(USAGE)
    if bundle is not None:
        raise typer.Exit(_verify_bundle(bundle, key))
    settings = settings_mod.load()
    url = db or settings.casefile_db
    if evidence:
        try:
            checked, damaged, missing = verify_store(url)
        except Exception as err:  # store unreachable, credentials refused, database missing
            _cannot_read(f"cannot read the evidence store: {_reason(err)}")
        for sha in damaged:
            console.print(
                f"[red]DAMAGED[/red]: object {sha}: its bytes no longer hash to its key",
                soft_wrap=True,
            )
        for line in missing:
            console.print(
                f"[red]MISSING[/red]: uploaded content not in the store: {line}", soft_wrap=True
            )
        if damaged or missing:
            raise typer.Exit(FAILED)
        console.print(f"[green]OK[/green]: {checked} evidence objects re-hashed, all intact")
        if not events:
            raise typer.Exit(VERIFIED)
    published: dict[int, str] | None = None
    if events:
        import asyncio

        from liandong.topics import CASEFILE_EVENTS

        topic = settings.topic(CASEFILE_EVENTS)
        try:
            published = asyncio.run(read_published(settings.kafka_bootstrap, topic))
        except Exception as err:  # aiokafka's connection errors have no common base
            _cannot_read(f"cannot read {topic} from {settings.kafka_bootstrap}: {_reason(err)}")
        console.print(f"{len(published)} chain entries published on {topic}")
    try:
        report, problems = verify_database(url, show_progress=True, published=published)
    except (SQLAlchemyError, OSError) as err:
        _cannot_read(f"cannot read the database {_safe_url(url)}: {_reason(err)}")
    _say(report, problems)
    raise typer.Exit(VERIFIED if report.ok and not problems else FAILED)


def _verify_bundle(bundle: Path, key: Path | None) -> int:
    import tarfile

    from casefile.adapters.bundle_archive import verify_bundle_file
    from casefile.evidence_config import bundle_key_path

    key_file = key or bundle_key_path().with_suffix(".pub")
    try:
        public = key_file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as err:
        _cannot_read(f"cannot read the bundle key {key_file}: {_reason(err)}")
    notes: list[str] = []
    try:
        problems = verify_bundle_file(bundle, public, notes)
    except (OSError, tarfile.TarError) as err:
        _cannot_read(f"cannot read {bundle}: {_reason(err)}")
    for n in notes:
        console.print(f"[yellow]note[/yellow]: {n}", highlight=False, soft_wrap=True)
    for p in problems:
        console.print(f"[red]FAILED[/red]: {p}", highlight=False, soft_wrap=True)
    if problems:
        return FAILED
    console.print(f"[green]OK[/green]: {bundle} verified (files, signature, chain, case, evidence)")
    return VERIFIED


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable URL)"


def _cannot_read(message: str) -> NoReturn:
    console.print(f"[red]cannot verify[/red]: {message}", soft_wrap=True)
    raise typer.Exit(UNREADABLE)


@casefile_app.command("export")
def export(
    case: Annotated[str, typer.Argument(help="case id")],
    out: Annotated[Path, typer.Option(help="bundle archive to write (tar)")],
    db: Annotated[str, typer.Option(help="database URL (default LIANDONG_CASEFILE_DB)")] = "",
    force: Annotated[bool, typer.Option(help="replace an existing file (never a symlink)")] = False,
) -> None:
    """Write one signed archive (case document, audit chain, every evidence file, SHA256SUMS,
    a verification script) for review without the service: `liandong casefile verify
    --bundle FILE`, or by hand as its README.txt says."""
    from casefile.adapters.bundle_archive import BundleError

    url = db or settings_mod.load().casefile_db
    if out.is_symlink():
        console.print(f"[red]{out} is a symbolic link; refusing to write through it[/red]")
        raise typer.Exit(1)
    if out.exists() and not force:
        console.print(f"[red]{out} exists; use --force to replace it[/red]")
        raise typer.Exit(1)
    if not out.parent.is_dir():
        console.print(f"[red]no folder {out.parent} for {out.name}[/red]")
        raise typer.Exit(1)
    try:
        written = export_archive(url, case, out, force=force)
    except KeyError:
        console.print(f"[red]no case {case}[/red]")
        raise typer.Exit(USAGE) from None
    except BundleError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(FAILED) from None
    except (SQLAlchemyError, OSError) as err:
        console.print(f"[red]cannot read the database {_safe_url(url)}[/red]: {_reason(err)}")
        raise typer.Exit(UNREADABLE) from None
    console.print(
        f"written {out}: {written.files} files, {written.evidence_files} evidence files "
        f"({written.bytes:,} bytes)"
    )
    for evidence_id in written.missing_content:
        console.print(f"[yellow]evidence {evidence_id}: content not held by the store[/yellow]")


# phone API role for each casefile role name (`--for phone`)
_PHONE_ROLES = {
    "officer": "ENFORCEMENT",
    "enforcement_officer": "ENFORCEMENT",
    "enforcement": "ENFORCEMENT",
    "monitoring": "MONITORING",
    "monitoring_staff": "MONITORING",
    "manager": "DUTY_MANAGER",
    "duty_manager": "DUTY_MANAGER",
    "operations": "OPERATIONS",
}


@tokens_app.command("issue")
def issue(
    sub: Annotated[str, typer.Option(help="subject: person id, or service name")],
    role: Annotated[
        list[str],
        typer.Option(help="officer | monitoring | manager | admin | service (phone: operations)"),
    ],
    jurisdiction: Annotated[
        list[str] | None, typer.Option(help="county code prefix (managers)")
    ] = None,
    hours: Annotated[float, typer.Option(min=0.01, help="lifetime")] = 12.0,
    for_: Annotated[
        str,
        typer.Option(
            "--for",
            help="casefile (gRPC; LIANDONG_JWT_KEY or its key file) or phone (dispatch's phone "
            "API; LIANDONG_DISPATCH_JWT_KEY or its key file). Both carry sub, roles, "
            "jurisdiction, iss, iat and exp",
        ),
    ] = "casefile",
) -> None:
    """Print a bearer token for casefile or for the phone API."""
    from liandong.tokens.claims import role_of

    if for_ == "phone":
        from liandong.tokens.phone import issue as issue_phone

        if len(role) != 1 or role[0].lower() not in _PHONE_ROLES:
            console.print(f"[red]a phone token has one role of {', '.join(_PHONE_ROLES)}[/red]")
            raise typer.Exit(2)
        print(
            issue_phone(
                sub, _PHONE_ROLES[role[0].lower()], jurisdiction or [], ttl=timedelta(hours=hours)
            )
        )
        return
    if for_ != "casefile":
        console.print(f"[red]--for is casefile or phone, not {for_}[/red]")
        raise typer.Exit(2)
    from casefile.config import signing_key
    from liandong.tokens.issuing import issue as issue_token

    for name in role:
        if name.lower() != "service" and role_of(name) is None:
            console.print(f"[red]unknown role {name}[/red]")
            raise typer.Exit(2)
    for code in jurisdiction or []:
        if not (code.isascii() and code.isdigit()):
            console.print(f"[red]--jurisdiction {code!r} is not a division code (digits)[/red]")
            raise typer.Exit(2)
    token = issue_token(
        signing_key(),
        sub=sub,
        roles=role,
        jurisdictions=jurisdiction or [],
        ttl=timedelta(hours=hours),
    )
    print(token)


@tokens_app.command("service-key")
def service_key(
    name: Annotated[str, typer.Argument(help="service name, e.g. dispatch (its tokens' sub)")],
    out: Annotated[
        Path, typer.Option(help="directory for <name>.key (private, 0600) and <name>.pub")
    ],
) -> None:
    """Create an ES256 (EC P-256) key pair for a service's casefile tokens and print the
    settings for each side: casefile gets only the public key (LIANDONG_CASEFILE_SERVICE_KEYS),
    the service keeps the private key. Never replaces an existing key."""
    from liandong.tokens.keys import write_key_pair

    try:
        private, public = write_key_pair(out.resolve(), name)
    except (ValueError, FileExistsError) as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from None
    service = private.stem
    typer.echo(f"written {private} (private, 0600) and {public}", err=True)
    print("# casefile (join with other name=path entries there by commas):")
    print(f"LIANDONG_CASEFILE_SERVICE_KEYS={service}={public}")
    if service == "dispatch":
        print("# dispatch:")
        print(f"LIANDONG_DISPATCH_CASEFILE_KEY={private}")
    else:
        print(f"# {service}: sign ES256 tokens with {private}, header kid={service}")
