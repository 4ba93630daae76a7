"""Runs every registered benchmark and writes bench/results.json and bench/results.md.

A benchmark is a module bench/<name>.py exposing `run() -> list[dict]`, each dict with
name, value, unit, target (None when there is none to meet) and command. Figures are
measured here, on this machine, never asserted in the test suite.

`make bench` always finishes: each module runs in its own process (a module that crashes,
hangs past LIANDONG_BENCH_MODULE_TIMEOUT seconds, default 3600, or leaves threads behind
cannot take the others with it); a failing module prints why and the rest still report. The
exit status is non-zero only at the end, with the list of the modules that failed.

Ceilings: every figure is shown beside a ceiling measured in the same run, so a reader can
tell a slow machine from a slow program. A record may carry its own (`ceiling`: name, value,
unit, e.g. casefile's no-op gRPC server or Kafka's own producer tool); any other record gets
the single-core Python reference loop (bench/ceilings.py) measured just before its module ran.

`python -m bench.run [module ...]` runs only the named modules.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
NOT_MODULES = {"__init__", "run", "ceilings"}
console = Console(width=200)  # the ceiling column needs room, also in a log


def meets(record: dict) -> str:
    target, value = record.get("target"), record.get("value")
    if target is None or value is None:
        return "-"
    lower_is_better = record.get("unit") in {"s", "ms", "MiB"} or record.get("lower_is_better")
    ok = value <= target if lower_is_better else value >= target
    return "yes" if ok else "NO"


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ceiling_text(record: dict) -> tuple[str, str]:
    """The ceiling beside a figure, and the ratio when both are in the same unit."""
    ceiling = record.get("ceiling")
    if not ceiling:
        return "", ""
    text = f"{_shown(ceiling.get('value'))} {ceiling.get('unit', '')} ({ceiling.get('name', '')})"
    value, top = record.get("value"), ceiling.get("value")
    same_unit = ceiling.get("unit") == record.get("unit")
    if same_unit and isinstance(value, int | float) and isinstance(top, int | float) and top:
        return text, f"{value / top:.2f}"
    return text, ""


def _child(name: str, out: Path) -> int:
    """Runs one module in this process and writes its records (or its failure) to `out`."""
    sys.path.insert(0, str(HERE.parent))
    from bench.ceilings import python_reference

    reference = python_reference()
    try:
        records = importlib.import_module(f"bench.{name}").run()
    except BaseException:  # a module's failure of any kind is reported, never raised further
        out.write_text(json.dumps({"error": traceback.format_exc()}))
        return 1
    out.write_text(json.dumps({"records": records, "reference": reference}, default=str))
    return 0


def _run_module(name: str, timeout: float) -> tuple[list[dict], str | None]:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "out.json"
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.run", "--child", name, str(out)],
            cwd=HERE.parent,
            start_new_session=True,
        )
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            # SIGINT first: the module's finally blocks stop what it started (services, a
            # broker of its own); then no mercy
            child.send_signal(signal.SIGINT)
            try:
                child.wait(90)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            return [], f"timed out after {timeout:.0f} s"
        if not out.exists():
            return [], "the module's process died without a result (see its output above)"
        doc = json.loads(out.read_text())
    if "error" in doc:
        return [], doc["error"]
    reference = {
        "name": "Python reference loop, 1 core, same run",
        "value": round(doc["reference"]),
        "unit": "ops/s",
    }
    records = doc["records"]
    for record in records:
        record.setdefault("ceiling", reference)
    return records, None


def modules() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if p.stem not in NOT_MODULES)


def run_all(names: list[str], timeout: float) -> tuple[list[dict], dict[str, str]]:
    """Runs the modules one after the other; (their records, failed module -> why)."""
    results: list[dict] = []
    failed: dict[str, str] = {}
    for name in names:
        console.print(f"[b]{name}[/b] ...")
        started = time.monotonic()
        records, error = _run_module(name, timeout)
        if error is not None:
            failed[name] = error.strip().splitlines()[-1] if error.strip() else "failed"
            console.print(f"[red]{name} failed[/red] (the other modules still run)\n{error}")
            continue
        for record in records:
            record.setdefault("command", f"make bench (python -m bench.run {name})")
            record["module"] = name
            record["seconds"] = round(time.monotonic() - started, 2)
            results.append(record)
    return results, failed


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        return _child(argv[1], Path(argv[2]))
    only = set(argv)
    names = [name for name in modules() if not only or name in only]
    # e2e_stack, the longest, takes ~15 min on a quiet 2-core machine, more on a busy one
    timeout = float(os.environ.get("LIANDONG_BENCH_MODULE_TIMEOUT", "3600"))
    results, failed = run_all(names, timeout)
    doc = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": results,
        "failed_modules": failed,
    }
    (HERE / "results.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    header = ("benchmark", "value", "unit", "target", "meets", "ceiling (same run)", "ratio")
    table = Table(*header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        ceiling, ratio = ceiling_text(r)
        row = [
            r["name"],
            _shown(r.get("value")),
            str(r.get("unit", "")),
            str(r.get("target")),
            meets(r),
            ceiling,
            ratio,
        ]
        table.add_row(*row)
        lines.append("| " + " | ".join(row) + " |")
    for name, why in failed.items():
        lines.append(f"| {name} FAILED: {why} | | | | | | |")
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    console.print(table)
    console.print("written bench/results.json and bench/results.md")
    if failed:
        console.print(f"[red]failed modules: {', '.join(failed)}[/red]")
        for name, why in failed.items():
            console.print(f"  {name}: {why}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
