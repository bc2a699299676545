"""The validation suite's fast forms (recsim.validation; `recsim reproduce` runs the full ones):
every target measures what it documents, and its status is the documented one."""

from __future__ import annotations

import pytest

from recsim.validation import SIZES, TARGETS, run_target, target


def test_targets_are_numbered_once_and_documented():
    numbers = [t.number for t in TARGETS]
    assert numbers == sorted(set(numbers)) and all(n >= 1 for n in numbers)
    for t in TARGETS:
        assert t.title and t.source and t.expected and t.tolerance, t.key
        if t.status != "reproduced":
            assert t.reason, (t.key, "a status other than reproduced needs its reason")
        else:
            assert not t.reason or t.fast_status, (t.key, "a reproduced target gives a reason only for its fast_status")


@pytest.mark.parametrize("key", [t.key for t in TARGETS])
def test_each_target_gives_its_documented_status_at_the_fast_size(key):
    t = target(key)
    outcome = run_target(t, "fast")
    assert outcome.status == t.expected_fast_status, "\n".join([f"{t.key}: {outcome.value}", *outcome.details])
    assert outcome.value and outcome.details


def test_unknown_target_and_size_are_refused():
    with pytest.raises(LookupError, match="no validation target"):
        target("nope")
    with pytest.raises(ValueError, match="size"):
        run_target(TARGETS[0], "huge")
    assert SIZES == ("fast", "full")


def _recsim(*args, cwd):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "recsim", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_reproduce_lists_runs_and_writes_the_table(tmp_path):
    listed = _recsim("reproduce", "--list", cwd=tmp_path)
    assert listed.returncode == 0
    assert [line.split()[1] for line in listed.stdout.splitlines()] == [t.key for t in TARGETS]
    twice = _recsim("reproduce", "--list", "--only", "1", "--only", "choice_models", cwd=tmp_path)
    assert twice.stdout.split() == ["1", "choice_models", "Choice", "models"]  # named twice, listed once
    done = _recsim("reproduce", "--only", "breaks", "--only", "11", "--size", "fast", "--out", "v", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    from recsim.analysis import read_csv

    table = read_csv(tmp_path / "v" / "validation.csv")
    assert table["key"].tolist() == ["breaks", "degeneracy"]
    # degeneracy: the full size's status beside the fast one, in a narrow column that wraps
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "status" in line and "target" in line)
    column = lines[header].index("status")
    statuses = " ".join(" ".join(line[column:].split()) for line in lines[header + 1:] if len(line) > column)
    assert "not reproduced (full size: partly reproduced)" in statuses, done.stdout
    assert (table["status"] == table["documented_status"]).all()
    assert all(len(d.splitlines()) >= 3 for d in table["details"]), "one sub-check per line"
    markdown = (tmp_path / "v" / "validation.md").read_text()
    assert "| 7 | Breaks that raise visits |" in markdown and "| reproduced |" in markdown


def test_reproduce_refuses_bad_input_in_one_line_exit_2(tmp_path):
    from support import one_screen

    one_screen(_recsim("reproduce", "--only", "nope", cwd=tmp_path), 2, "no validation target 'nope'")
    one_screen(_recsim("reproduce", "--size", "huge", cwd=tmp_path), 2, "--size must be one of fast, full")
    one_screen(_recsim("reproduce", "--size", "fast", "--write-readme", cwd=tmp_path), 2, "which are full size")
    # where the outputs go is checked before any target runs (seconds, not a quarter of an hour)
    (tmp_path / "a_file").write_text("")
    one_screen(_recsim("reproduce", "--only", "1", "--out", "a_file/v", cwd=tmp_path), 2, "--out a_file/v", "cannot write")
    assert not (tmp_path / "validation.csv").exists()


def test_the_readme_table_is_written_between_its_markers(tmp_path):
    from recsim.validation import Outcome
    from recsim.validation.table import BEGIN, END, markdown_table, write_readme_table

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold\n{END}\nrest\n")
    t = target("breaks")
    write_readme_table(readme, markdown_table([(t, Outcome("x", "not expressed"))], "full"))
    text = readme.read_text()
    assert text.startswith("intro\n" + BEGIN) and text.endswith(END + "\nrest\n") and "old" not in text
    measured = markdown_table([(target("breaks"), Outcome("a", "not expressed")),
                               (target("returns"), Outcome("b", "reproduced"))], "full")
    write_readme_table(readme, measured)
    write_readme_table(readme, markdown_table([(target("breaks"), Outcome("c", "reproduced"))], "full"), merge=True)
    rows = [line for line in readme.read_text().splitlines() if line.startswith("| 2 |") or line.startswith("| 7 |")]
    assert [row.split(" | ")[5] for row in rows] == ["b", "c"]  # 7 re-measured in its place, 2 kept
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        write_readme_table(readme, "t")


def test_status_of_known_answers_and_documented_status_by_size():
    from recsim.validation import status_of

    assert status_of([True, True]) == "reproduced"
    assert status_of([True, False]) == "partly reproduced"
    assert status_of([False, False]) == "not reproduced"
    degeneracy = target("degeneracy")  # partly at full size, too few draws at the fast one
    assert degeneracy.documented_status("full") == "partly reproduced"
    assert degeneracy.documented_status("fast") == "not reproduced"
