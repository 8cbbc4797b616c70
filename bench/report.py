"""How benchmark results are shown: markdown tables and the machine they ran on."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A markdown table (numbers right-aligned), ready for BENCHMARKS.md."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    # A column is numeric (right-aligned) when every non-empty cell in it is a number.
    numeric = [any(r[i] for r in cells) and all(_is_number(r[i]) for r in cells if r[i]) for i in range(len(headers))]

    def line(values: list[str]) -> str:
        return (
            "| "
            + " | ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True))
            + " |"
        )

    rule = (
        "|"
        + "|".join(("-" * (w + 1) + ":") if n else ("-" * (w + 2)) for w, n in zip(widths, numeric, strict=True))
        + "|"
    )
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "").rstrip("x%"))
    except ValueError:
        return False
    return True


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as lines:
            for line in lines:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        with open("/proc/meminfo") as lines:
            for line in lines:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def machine() -> str:
    """One line naming the machine, its load and the time of the run."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        redis_version = (
            subprocess.run(["redis-server", "--version"], capture_output=True, text=True, timeout=5)
            .stdout.split()[2]
            .removeprefix("v=")
        )
    except (OSError, IndexError, subprocess.SubprocessError):
        redis_version = "?"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{now} · {os.cpu_count()} CPUs ({_cpu_model()}) · {_ram_gib():.0f} GiB RAM · "
        f"Python {platform.python_version()} · Redis {redis_version} · load average before: {load}"
    )
