"""Benchmark: evidence through the phone API into casefile's store, and bundle verification.

Upload (issue 14 target: at least 0.5 of each baseline). A stack in a separate process:
casefile's gRPC server with its evidence store (local disk, then the local S3 server from
deploy/s3/s3.sh) and dispatch's phone API on uvicorn with its real casefile client, both on
one event loop (in production they are two processes, often two hosts). This process uploads
a 20 MB video as a phone would: create, PATCH in 4 MiB pieces at their offsets, complete.
At complete, dispatch streams the spooled file to casefile (512 KiB gRPC messages);
casefile re-hashes, sniffs, stores with fsync and records it (docs/casefile.md, "Where an
upload's time goes"). Timed from create to the completed answer; the median of three
different 20 MB files (the same bytes would be stored once).
Baselines in the same run on the same machine: `cp` of the same file (page cache, **no
fsync**: the issue's figure), `cp` then `sync FILE` (the copy fsync'd, as the store does
before it answers: the fairer figure, reported beside it), and a plain boto3 put_object of
it to the same S3 server. Ratio = baseline time / upload time.

Bundle verification (target >= 200 MB/s): 1 GiB of evidence (8 videos of 128 MiB) uploaded
through casefile's gRPC API, exported as a signed bundle, then `verify --bundle`'s check
(read the tar, hash every file, signature, chain, case document, evidence) timed alone.

Run: `python -m bench.run evidence_store` or `make bench` (which starts the S3 server).
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MB = 2**20
VIDEO_BYTES = 20 * 10**6  # "a 20 MB video"
PATCH_BYTES = 4 * MB
BUNDLE_OBJECTS, BUNDLE_OBJECT_BYTES = 8, 128 * MB
KEY = "bench-evidence-key-0123456789abcdef0123"
PHONE_KEY = "bench-phone-key-of-at-least-32-bytes!!"


def _video(size: int, seed: int) -> bytes:
    head = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
    return head + hashlib.sha256(str(seed).encode()).digest() + os.urandom(size - len(head) - 32)


def _s3_env() -> dict[str, str]:
    script = str(ROOT / "deploy/s3/s3.sh")
    subprocess.run([script, "up"], check=True, capture_output=True)
    out = subprocess.run([script, "env"], check=True, capture_output=True, text=True).stdout
    return dict(part.split("=", 1) for part in out.split())


# ---- the stack process ---------------------------------------------------------------------


def _stack(store_url: str, folder: str, ready: Any, stop: Any) -> None:
    asyncio.run(_serve_stack(store_url, Path(folder), ready, stop))


async def _serve_stack(store_url: str, folder: Path, ready: Any, stop: Any) -> None:
    import uvicorn

    from casefile import migrations
    from casefile.adapters.evidence_store import open_store
    from casefile.adapters.store import CaseStore
    from casefile.adapters.store import make_engine as casefile_engine
    from casefile.entrypoints.grpc_server import serve, tune_gc
    from casefile.evidence_config import EvidenceConfig
    from dispatch.adapters.casefile_client import CaseFileClient, CasefileTokens
    from dispatch.adapters.upload_spool import UploadSpool
    from dispatch.domain.tasks import task_id_for
    from dispatch.entrypoints.phone_api import create_app
    from liandong.tokens.keys import new_private_key
    from liandong.tokens.verifying import AuthConfig
    from tests.unit.dispatch.harness import alert_event, build

    os.environ["LIANDONG_EVIDENCE_STORE"] = store_url
    dispatch_key = new_private_key()
    engine = casefile_engine(f"sqlite:///{folder / 'casefile.db'}")
    migrations.upgrade(engine)
    halt = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    evidence = open_store(store_url, folder)
    tune_gc()
    casefile = asyncio.create_task(
        serve(
            CaseStore(engine),
            "127.0.0.1:0",
            halt,
            auth=AuthConfig(
                required=True, hs_key=KEY, service_keys={"dispatch": dispatch_key.public_key()}
            ),
            ready=port.set_result,
            evidence=(evidence, EvidenceConfig.from_env()),
        )
    )
    address = f"127.0.0.1:{await port}"
    h = build(folder)
    h.service.casefile = CaseFileClient(address, CasefileTokens(dispatch_key), timeout_s=60)
    await h.service.on_alert_event(alert_event("A1"))
    tid = task_id_for("A1")
    for pid in ("e1", "e2", "m1"):
        await h.service.accept(tid, pid)
    app = create_app(h.service, PHONE_KEY, uploads=UploadSpool(folder / "uploads"))
    # proto IPPROTO_TCP, as the socket uvicorn makes from host and port: asyncio sets
    # TCP_NODELAY on accepted connections only then (with proto 0 the JSON answer of
    # complete, headers and body in two writes, waited ~40 ms for a delayed ACK)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    http = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(http.serve(sockets=[sock]))
    while not http.started:
        await asyncio.sleep(0.01)
    ready.put((sock.getsockname()[1], tid))
    while stop.empty():
        await asyncio.sleep(0.1)
    http.should_exit = True
    await serving
    halt.set()
    await casefile


def _upload_once(base: str, tid: str, data: bytes, n: int) -> float:
    import httpx

    from liandong.tokens.phone import issue

    auth = {"Authorization": f"Bearer {issue('e1', 'ENFORCEMENT', ['320106'], key=PHONE_KEY)}"}
    body = {
        "evidence_id": f"V{n}",
        "kind": "VIDEO",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "media_type": "video/mp4",
        "captured_at": (datetime(2026, 3, 2, 2, 30, tzinfo=UTC)).isoformat(),
    }
    with httpx.Client(base_url=base, timeout=120) as c:
        started = time.perf_counter()
        created = c.post(f"/v1/tasks/{tid}/evidence/uploads", json=body, headers=auth)
        where = created.headers["Location"]
        for offset in range(0, len(data), PATCH_BYTES):
            r = c.patch(
                where,
                content=data[offset : offset + PATCH_BYTES],
                headers={
                    **auth,
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                },
            )
            assert r.status_code == 204, r.text
        done = c.post(f"{where}/complete", headers=auth)
        elapsed = time.perf_counter() - started
    assert done.status_code == 200, done.text
    return elapsed


def _phone_uploads(store_url: str, videos: list[bytes], env: dict[str, str]) -> float:
    """Median seconds of uploading each of `videos` through a fresh stack on `store_url`."""
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Queue()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as folder:
        proc = ctx.Process(target=_stack, args=(store_url, folder, ready, stop))
        proc.start()
        try:
            port, tid = ready.get(timeout=120)
            base = f"http://127.0.0.1:{port}"
            times = [_upload_once(base, tid, v, n) for n, v in enumerate(videos)]
        finally:
            stop.put(True)
            proc.join(60)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return statistics.median(times)


def _cp(videos: list[bytes], *, sync: bool = False) -> float:
    """Median seconds of `cp` of each video (a file in the page cache) to a new file in the
    same folder as the store's; with `sync`, `cp` then `sync FILE` (fsync of the copy), the
    durability the evidence store gives before it answers."""
    (ROOT / ".state").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-cp-", dir=str(ROOT / ".state")) as folder:
        times = []
        for n, v in enumerate(videos):
            src = Path(folder) / f"src{n}.mp4"
            src.write_bytes(v)
            dst = str(Path(folder) / f"dst{n}.mp4")
            started = time.perf_counter()
            subprocess.run(["cp", str(src), dst], check=True)
            if sync:
                subprocess.run(["sync", dst], check=True)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def _boto3_put(videos: list[bytes], env: dict[str, str]) -> float:
    from casefile.adapters.evidence_store.s3 import s3_client

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = s3_client(env["LIANDONG_EVIDENCE_S3_ENDPOINT"])
        bucket = f"bench-put-{os.getpid()}"
        client.create_bucket(Bucket=bucket)
        times = []
        for n, v in enumerate(videos):
            started = time.perf_counter()
            client.put_object(Bucket=bucket, Key=f"v{n}", Body=v)
            times.append(time.perf_counter() - started)
    finally:
        for k, val in saved.items():
            if val is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = val
    return statistics.median(times)


def _empty_buckets(env: dict[str, str], buckets: list[str]) -> None:
    """The bench's own scratch buckets on the local S3 server, emptied and removed (the
    evidence store itself never deletes; this is the bench cleaning up after itself)."""
    from casefile.adapters.evidence_store.s3 import s3_client

    client = s3_client(env["LIANDONG_EVIDENCE_S3_ENDPOINT"])
    for bucket in buckets:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)


# ---- bundle verification -------------------------------------------------------------------


async def _bundle(folder: Path) -> Path:
    import grpc

    from casefile import migrations
    from casefile.adapters.evidence_store import open_store
    from casefile.adapters.store import CaseStore, make_engine
    from casefile.entrypoints.cli import export_archive
    from casefile.entrypoints.grpc_server import serve
    from casefile.evidence_config import EvidenceConfig
    from liandong.tokens.issuing import issue
    from liandong.tokens.verifying import AuthConfig
    from liandong.v1 import casefile_pb2, casefile_pb2_grpc

    url = f"sqlite:///{folder / 'casefile.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    store_dir = str(folder / "evidence")
    os.environ["LIANDONG_EVIDENCE_STORE"] = store_dir
    os.environ["LIANDONG_CASEFILE_BUNDLE_KEY"] = str(folder / "bundle.key")
    halt = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        serve(
            CaseStore(engine),
            "127.0.0.1:0",
            halt,
            auth=AuthConfig(required=True, hs_key=KEY),
            ready=port.set_result,
            evidence=(open_store(store_dir, folder), EvidenceConfig.from_env()),
        )
    )
    admin = (("authorization", f"Bearer {issue(KEY, sub='ops', roles=['admin'])}"),)
    officer = (("authorization", f"Bearer {issue(KEY, sub='o1', roles=['officer'])}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{await port}") as ch:
        stub = casefile_pb2_grpc.CaseFileStub(ch)
        discovered = datetime.now(UTC) - timedelta(hours=2)
        opened = casefile_pb2.OpenCaseRequest(
            request_id="open",
            task_id="bench-bundle",
            enterprise_id="ent-1",
            outlet_id="outlet-1",
            county="320583",
            team=[
                casefile_pb2.Party(person_id="o1", role="ENFORCEMENT"),
                casefile_pb2.Party(person_id="o2", role="ENFORCEMENT"),
                casefile_pb2.Party(person_id="m1", role="MONITORING"),
            ],
            opened_by="ops",
        )
        opened.discovered_at.FromDatetime(discovered)
        case = await stub.OpenCase(opened, metadata=admin)
        for n in range(BUNDLE_OBJECTS):
            data = _video(BUNDLE_OBJECT_BYTES, 1000 + n)

            async def messages(data: bytes = data, n: int = n) -> Any:
                header = casefile_pb2.EvidenceUpload(
                    request_id=f"up-{n}",
                    case_id=case.case_id,
                    evidence_id=f"V{n}",
                    kind="VIDEO",
                    sha256=hashlib.sha256(data).hexdigest(),
                    size_bytes=len(data),
                    captured_by="o1",
                )
                header.captured_at.FromDatetime(discovered + timedelta(minutes=30))
                yield casefile_pb2.UploadEvidenceRequest(header=header)
                for start in range(0, len(data), 4 * MB):
                    yield casefile_pb2.UploadEvidenceRequest(chunk=data[start : start + 4 * MB])

            await stub.UploadEvidence(messages(), metadata=officer, timeout=600)
    halt.set()
    await server
    engine.dispose()
    out = folder / "bundle.tar"
    export_archive(url, case.case_id, out)
    shutil.rmtree(store_dir)  # only the bundle is read from here on
    return out


def _verify_bundle_rate() -> tuple[float, float, int]:
    from casefile.adapters.bundle_archive import verify_bundle_file

    with tempfile.TemporaryDirectory(prefix="bench-bundle-", dir=str(ROOT / ".state")) as tmp:
        folder = Path(tmp)
        out = asyncio.run(_bundle(folder))
        public = (folder / "bundle.pub").read_text()
        size = out.stat().st_size
        # the archive was just written, so it is read from the page cache as a recent
        # download would be; the figure is hashing and checking, not the disk
        started = time.perf_counter()
        problems = verify_bundle_file(out, public)
        elapsed = time.perf_counter() - started
        assert problems == [], problems
    return size / MB / elapsed, elapsed, size


def run() -> list[dict[str, Any]]:
    command = "python -m bench.run evidence_store"
    env = _s3_env()
    os.environ.update(env)  # this process is the bench: its clients use the S3 server's keys
    videos = [_video(VIDEO_BYTES, n) for n in range(3)]
    cp_s = _cp(videos)
    cp_sync_s = _cp(videos, sync=True)
    put_s = _boto3_put(videos, env)
    (ROOT / ".state").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-store-", dir=str(ROOT / ".state")) as store:
        disk_s = _phone_uploads(store, videos, env)
    bucket = f"s3://bench-evidence-{os.getpid()}/cases"
    s3_s = _phone_uploads(bucket, videos, env)
    _empty_buckets(env, [f"bench-put-{os.getpid()}", f"bench-evidence-{os.getpid()}"])
    rate, verify_s, bundle_bytes = _verify_bundle_rate()
    mb = VIDEO_BYTES / 10**6
    note = (
        f"20 MB video via the phone API (4 MiB PATCHes + complete): disk {disk_s * 1000:.0f} ms, "
        f"S3 {s3_s * 1000:.0f} ms; cp {cp_s * 1000:.0f} ms (no fsync), cp + sync "
        f"{cp_sync_s * 1000:.0f} ms, boto3 put {put_s * 1000:.0f} ms"
    )
    return [
        {
            "name": "evidence upload 20 MB phone API -> disk, ratio to cp",
            "value": round(cp_s / disk_s, 3),
            "unit": "ratio",
            "target": 0.5,
            "command": command,
            "detail": note,
        },
        {
            "name": "evidence upload 20 MB phone API -> disk, ratio to cp + sync (fsync)",
            "value": round(cp_sync_s / disk_s, 3),
            "unit": "ratio",
            "target": None,
            "command": command,
            "detail": "cp has no fsync; the store fsyncs before it answers: the fairer figure",
        },
        {
            "name": "evidence upload 20 MB phone API -> S3, ratio to cp",
            "value": round(cp_s / s3_s, 3),
            "unit": "ratio",
            "target": 0.5,
            "command": command,
        },
        {
            "name": "evidence upload 20 MB phone API -> S3, ratio to boto3 put",
            "value": round(put_s / s3_s, 3),
            "unit": "ratio",
            "target": 0.5,
            "command": command,
        },
        {
            "name": "evidence upload 20 MB phone API -> disk, throughput",
            "value": round(mb / disk_s, 1),
            "unit": "MB/s",
            "target": None,
            "command": command,
        },
        {
            "name": f"bundle verification ({bundle_bytes / MB:,.0f} MiB, {verify_s:.1f} s)",
            "value": round(rate, 1),
            "unit": "MiB/s",
            "target": 200,
            "command": command,
        },
    ]


if __name__ == "__main__":
    for record in run():
        print(record)
