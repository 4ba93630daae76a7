"""Starting and stopping the four services as real processes (demo, `make up`, e2e tests)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from liandong import ports
from liandong.settings import Settings

SERVICES = ("casefile", "dispatch", "alerts", "gateway")


def free_port() -> int:
    """A port outside the ephemeral range, so a service can restart on it (liandong.ports)."""
    return ports.free_port()


@dataclass
class Stack:
    """The services of one stack, sharing a topic prefix and a state folder."""

    state_dir: Path
    settings: Settings
    traces_file: Path | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # an isolated stack keeps its evidence store and upload spool in its own state folder too
    # (task ids repeat across runs: a shared spool would hand one run another's upload)
    own_files: bool = False

    @classmethod
    def isolated(cls, state_dir: Path, prefix: str, kafka_bootstrap: str) -> Stack:
        """A stack on its own topics, ports and databases (tests and the demo)."""
        state_dir.mkdir(parents=True, exist_ok=True)
        settings = Settings(
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=prefix,
            gateway_port=free_port(),
            casefile_grpc=f"127.0.0.1:{free_port()}",
            casefile_db=f"sqlite:///{state_dir / 'casefile.db'}",
            dispatch_http_port=free_port(),
            dispatch_db=f"sqlite:///{state_dir / 'dispatch.db'}",
            alerts_web_port=free_port(),
            alerts_data_dir=str(state_dir / "alerts"),
        )
        return cls(state_dir, settings, traces_file=state_dir / "traces.jsonl", own_files=True)

    def environment(self) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)
        env.update(
            {
                "LIANDONG_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
                "LIANDONG_TOPIC_PREFIX": s.topic_prefix,
                "LIANDONG_PARTITIONS": str(s.partitions),
                "LIANDONG_REPLICATION": str(s.replication),
                "LIANDONG_ALLOW_SINGLE_REPLICA": "1" if s.allow_single_replica else "0",
                "LIANDONG_GATEWAY_HOST": s.gateway_host,
                "LIANDONG_GATEWAY_PORT": str(s.gateway_port),
                "LIANDONG_CASEFILE_GRPC": s.casefile_grpc,
                "LIANDONG_CASEFILE_DB": s.casefile_db,
                "LIANDONG_DISPATCH_HOST": s.dispatch_http_host,
                "LIANDONG_DISPATCH_PORT": str(s.dispatch_http_port),
                "LIANDONG_DISPATCH_DB": s.dispatch_db,
                "LIANDONG_ALERTS_WEB_PORT": str(s.alerts_web_port),
                "LIANDONG_ALERTS_DATA": s.alerts_data_dir,
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.traces_file is not None:
            env["LIANDONG_TRACES_FILE"] = str(self.traces_file)
        if self.own_files:
            env["LIANDONG_EVIDENCE_STORE"] = str(self.state_dir / "evidence")
            env["LIANDONG_DISPATCH_UPLOADS"] = str(self.state_dir / "uploads")
        return env

    def start(self, services: tuple[str, ...] = SERVICES) -> None:
        env = self.environment()
        for name in services:
            # The child keeps its own copy of the descriptor; ours closes with the block.
            with open(self.state_dir / f"{name}.log", "ab") as log:
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "liandong.cli", "run", name],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # Ctrl-C reaches us; we stop the children
                )
            (self.state_dir / f"{name}.pid").write_text(str(self.processes[name].pid))

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                tail = (self.state_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    async def wait_ready(self, timeout: float = 90.0) -> None:
        """Ready when casefile answers health SERVING, the gateway accepts TCP, dispatch's
        phone API answers /healthz 200, dispatch and alerts have joined their consumer groups."""
        deadline = time.monotonic() + timeout
        waiting = {
            "casefile": self._casefile_ready,
            "gateway": self._gateway_ready,
            "dispatch": self._dispatch_ready,
        }
        waiting = {k: v for k, v in waiting.items() if k in self.processes}
        groups = {
            "alerts": f"{self.settings.topic_prefix}liandong-alerts",
            "dispatch": f"{self.settings.topic_prefix}liandong-dispatch",
        }
        while time.monotonic() < deadline:
            self.check_alive()
            for name in list(waiting):
                if await waiting[name]():
                    del waiting[name]
            for name in list(groups):
                if name not in self.processes or await asyncio.to_thread(
                    group_stable, self.settings, groups[name]
                ):
                    del groups[name]
            if not waiting and not groups:
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(
            f"services not ready in {timeout:.0f} s: {sorted(waiting) + sorted(groups)}"
        )

    async def _casefile_ready(self) -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        try:
            async with grpc.aio.insecure_channel(self.settings.casefile_grpc) as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=1
                )
                return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        except grpc.RpcError:
            return False

    async def _gateway_ready(self) -> bool:
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(self.settings.gateway_host, self.settings.gateway_port), 1
            )
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def _dispatch_ready(self) -> bool:
        import httpx

        url = (
            f"http://{self.settings.dispatch_http_host}:{self.settings.dispatch_http_port}/healthz"
        )
        try:
            async with httpx.AsyncClient(timeout=1) as client:
                return (await client.get(url)).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 20.0) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.processes.values():
            left = max(deadline - time.monotonic(), 0.1)
            try:
                proc.wait(left)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        for name in self.processes:
            (self.state_dir / f"{name}.pid").unlink(missing_ok=True)
        self.processes.clear()


def group_stable(settings: Settings, group: str) -> bool:
    """True when the consumer group has members with partitions assigned."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap, client_id="liandong-stack"
        )
    except KafkaError:
        return False
    try:
        described = admin.describe_groups([group])
    except Exception:  # coordinator not elected yet, group unknown: not ready
        return False
    finally:
        admin.close()
    info = described.get(group) or {}
    # DescribeGroups answers with the group state and its members (kafka-python 3: a dict).
    return info.get("group_state") == "Stable" and bool(info.get("members"))


def delete_prefixed_topics(settings: Settings) -> int:
    """Removes a finished isolated stack's topics (its prefix must not be empty)."""
    if not settings.topic_prefix:
        raise ValueError("refusing to delete topics without a prefix")
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="liandong-stack")
    try:
        doomed = [t for t in admin.list_topics() if t.startswith(settings.topic_prefix)]
        if doomed:
            admin.delete_topics(doomed)
        return len(doomed)
    finally:
        admin.close()
