"""The README's table "What recsim reproduces", from measured outcomes."""

from __future__ import annotations

import re
from pathlib import Path

from . import Outcome, Target

__all__ = ["markdown_table", "write_readme_table", "BEGIN", "END"]

BEGIN = "<!-- validation table: written by `recsim reproduce --write-readme` -->"
END = "<!-- end of validation table -->"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown_table(rows: list[tuple[Target, Outcome]], size: str) -> str:
    """A Markdown table: one row per target with its source, what is expected, the tolerance and
    why, the value recsim gives, and the status (with the reason when not reproduced)."""
    lines = [
        f"Measured by `recsim reproduce` ({size} size); each row's details are in `validation.csv`.",
        "",
        "| # | target | source | expected | tolerance (why) | recsim gives | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for t, o in rows:
        status = o.status + (f": {t.reason}" if o.status != "reproduced" and t.reason else "")
        lines.append("| " + " | ".join(_cell(c) for c in (
            t.number, t.title, t.source, t.expected, t.tolerance, o.value, status)) + " |")
    return "\n".join(lines)


def write_readme_table(readme: Path, table: str) -> None:
    """Replace the text between :data:`BEGIN` and :data:`END` in ``readme`` with ``table``.
    Raises ValueError if the markers are missing."""
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{readme} has no validation table markers ({BEGIN!r} … {END!r})")
    readme.write_text(pattern.sub(lambda _: f"{BEGIN}\n{table}\n{END}", text), encoding="utf-8")
