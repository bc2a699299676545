"""The README's table "What recsim reproduces", from measured outcomes."""

from __future__ import annotations

import re
from pathlib import Path

from . import Outcome, Target

__all__ = ["markdown_table", "merge_tables", "write_readme_table", "BEGIN", "END"]

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


_ROW = re.compile(r"^\| (\d+) \|")


def merge_tables(old: str, new: str) -> str:
    """``new``'s rows in place of ``old``'s rows of the same target number, the others kept, in
    the targets' order (re-measuring some targets: ``recsim reproduce --only … --write-readme``)."""
    def rows(table: str) -> dict[int, str]:
        return {int(m.group(1)): line for line in table.splitlines() if (m := _ROW.match(line))}

    merged = rows(old) | rows(new)
    head = [line for line in new.splitlines() if not _ROW.match(line)]
    return "\n".join(head + [merged[n] for n in sorted(merged)])


def write_readme_table(readme: Path, table: str, merge: bool = False) -> None:
    """Replace the text between :data:`BEGIN` and :data:`END` in ``readme`` with ``table`` (with
    ``merge``, only the rows of the targets ``table`` holds: :func:`merge_tables`). Raises
    ValueError if the markers are missing."""
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r"\n?(.*?)\n?" + re.escape(END), re.S)
    found = pattern.search(text)
    if not found:
        raise ValueError(f"{readme} has no validation table markers ({BEGIN!r} … {END!r})")
    if merge:
        table = merge_tables(found.group(1), table)
    readme.write_text(pattern.sub(lambda _: f"{BEGIN}\n{table}\n{END}", text), encoding="utf-8")
