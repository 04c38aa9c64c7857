"""The report the `doctor` command fills (fashion_rag/commands/doctor.py): one line per check, and the helper
that turns any failure while loading into one FAIL line.

Not a command: cli.COMMAND_MODULES names the commands; this module only serves `doctor`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Check:
    section: str
    name: str
    status: str  # "ok", "FAIL" or "skip"
    detail: str
    fix: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    environment: dict = field(default_factory=dict)
    parts: dict = field(default_factory=dict)

    def add(self, section: str, name: str, ok: bool | None, detail: str, fix: str = "") -> bool:
        status = "skip" if ok is None else ("ok" if ok else "FAIL")
        self.checks.append(Check(section, name, status, detail, fix if status == "FAIL" else ""))
        return bool(ok)

    @property
    def problems(self) -> list[str]:
        return [
            f"{c.name}: {c.detail}" + (f"; fix: {c.fix}" if c.fix else "") for c in self.checks if c.status == "FAIL"
        ]


def attempt(report: Report, section: str, name: str, fix: str, load: Callable[[], Any]) -> Any:
    """Run `load()`; a failure of any kind becomes one FAIL line (reporting it is the point of the doctor)."""
    try:
        return load()
    except Exception as error:  # noqa: BLE001
        message = str(error).splitlines()[0] if str(error) else ""
        report.add(section, name, False, f"{type(error).__name__}: {message}"[:600], fix)
        return None
