"""Render bench/results/*.json as one markdown table (bench/results/summary.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def rows(data: dict, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        if key in ("machine", "benchmark", "targets"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict) and "median" in value:
            out.append((name, f"{value['median']} (median of {value['runs']})"))
        elif isinstance(value, dict):
            out += rows(value, name + ".")
        else:
            out.append((name, str(value)))
    return out


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results")
    lines = ["# Benchmark results", ""]
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        m = data.get("machine", {})
        where = f"{m.get('cpu')}, {m.get('cores')} cores, {m.get('qemu')}, accel {m.get('accel')}, {m.get('date')}"
        lines += [f"## {data.get('benchmark', path.stem)}", "", where, "", "| measurement | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in rows(data)]
        if data.get("targets"):
            lines += ["", "Targets: " + ", ".join(f"{k} {v}" for k, v in data["targets"].items())]
        lines.append("")
    (folder / "summary.md").write_text("\n".join(lines))
    print(folder / "summary.md")


if __name__ == "__main__":
    main()
