"""Runs every registered benchmark and writes bench/results.json and bench/results.md.

A benchmark is a module bench/<name>.py exposing `run() -> list[dict]`, each dict with
name, value, unit, target (None when there is none to meet) and command. Figures are
measured here, on this machine, never asserted in the test suite.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
console = Console()


def meets(record: dict) -> str:
    target, value = record.get("target"), record.get("value")
    if target is None or value is None:
        return "-"
    lower_is_better = record.get("unit") in {"s", "ms", "MiB"} or record.get("lower_is_better")
    ok = value <= target if lower_is_better else value >= target
    return "yes" if ok else "NO"


def main(argv: list[str]) -> int:
    only = set(argv)
    modules = sorted(p.stem for p in HERE.glob("*.py") if p.stem not in {"__init__", "run"})
    results: list[dict] = []
    failures = 0
    for name in modules:
        if only and name not in only:
            continue
        console.print(f"[b]{name}[/b] ...")
        started = time.monotonic()
        try:
            records = importlib.import_module(f"bench.{name}").run()
        except Exception:
            failures += 1
            console.print(f"[red]{name} failed[/red]\n{traceback.format_exc()}")
            continue
        for record in records:
            record.setdefault("command", f"make bench (python -m bench.run {name})")
            record["module"] = name
            record["seconds"] = round(time.monotonic() - started, 2)
            results.append(record)
    doc = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": __import__("os").cpu_count(),
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": results,
    }
    (HERE / "results.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    table = Table("benchmark", "value", "unit", "target", "meets")
    lines = ["| benchmark | value | unit | target | meets |", "|---|---|---|---|---|"]
    for r in results:
        value = r.get("value")
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        row = [r["name"], shown, str(r.get("unit", "")), str(r.get("target")), meets(r)]
        table.add_row(*row)
        lines.append("| " + " | ".join(row) + " |")
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    console.print(table)
    console.print("written bench/results.json and bench/results.md")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
