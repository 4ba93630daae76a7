"""The gateway's OpenTelemetry instruments: its tracer and the ``gateway.*`` counters."""

from __future__ import annotations

from opentelemetry import metrics, trace

tracer = trace.get_tracer("liandong.gateway")
meter = metrics.get_meter("liandong.gateway")
frames_counter = meter.create_counter("gateway.frames", description="frames by outcome")
bytes_counter = meter.create_counter("gateway.bytes", unit="By", description="bytes by outcome")
sessions_counter = meter.create_counter("gateway.sessions", description="session events")
active_sessions = meter.create_up_down_counter("gateway.sessions.active")
commands_counter = meter.create_counter("gateway.commands", description="command results")
