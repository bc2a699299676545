"""The ``recsim`` command line (typer): run, validate, schema, policies."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .config import ScenarioError, load_scenario, scenario_json_schema

__all__ = ["app", "main"]

app = typer.Typer(
    name="recsim",
    help="Simulate recommendation platforms: engagement proxies against hidden user wellbeing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out_console = Console()
if not out_console.is_terminal:  # piped or captured: do not squeeze tables into 80 columns
    out_console = Console(width=max(out_console.width, 140))
err_console = Console(stderr=True)

EXIT_BAD_INPUT = 2

SetOption = typer.Option(
    None, "--set", metavar="KEY=VALUE",
    help="Override a scenario value by dotted path, e.g. --set population.n_users=200 (repeatable).",
)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("recsim-engagement")
    except metadata.PackageNotFoundError:
        return "unknown"


def _version_callback(value: bool) -> None:
    if value:
        out_console.print(f"recsim {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Simulate recommendation platforms: engagement proxies against hidden user wellbeing."""


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def _report_scenario_error(exc: ScenarioError) -> None:
    err_console.print(
        f"[bold red]error:[/] {escape(exc.source)}: invalid scenario", highlight=False, soft_wrap=True
    )
    for path, message in exc.problems:
        err_console.print(
            f"  [bold]{escape(path or '<top level>')}[/]: {escape(message)}", highlight=False, soft_wrap=True
        )
    raise typer.Exit(EXIT_BAD_INPUT) from None


def _example_or(file: Path) -> Path:
    """``file``, or the example scenario of that name when no such file exists (``recsim run
    baseline`` after a plain pip install)."""
    from .examples import find_example

    if file.exists():
        return file
    example = find_example(str(file))
    if example is None:
        return file
    err_console.print(f"[dim]using the example scenario {escape(str(example))}[/]", highlight=False)
    return example


def _load(file: Path, overrides: list[str] | None, seed: int | None = None):
    file = _example_or(file)
    try:
        sc = load_scenario(file, overrides or [], seed=seed)
        _check_user_components(sc, str(file))
        return sc
    except ScenarioError as exc:
        _report_scenario_error(exc)


def _check_user_components(sc, source: str) -> None:
    """Hold the scenario's own user-model components (``module:Class``) to the conformance
    checks every built-in passes, before anything runs (a few milliseconds each)."""
    from .testing import UserModelCheckError, check_user_model
    from .users.model import build_user_model

    roles = [role for role, spec in sc.user_model if ":" in spec.type]
    if not roles:
        return
    model = build_user_model(sc)
    problems = []
    for role in roles:
        try:
            check_user_model(model, role)
        except UserModelCheckError as exc:
            problems.append((f"user_model.{role}.type", str(exc)))
    if problems:
        raise ScenarioError(source, problems)


@app.command()
def validate(
    file: Path = typer.Argument(..., help="Scenario YAML file."),
    overrides: Optional[List[str]] = SetOption,
) -> None:
    """Check a scenario file and print what it will run."""
    sc = _load(file, overrides)
    policies = ", ".join(p.name if p.name == p.type else f"{p.name} ({p.type})" for p in sc.policies)
    out_console.print(f"[green]ok[/] {file}: scenario [bold]{sc.name}[/]", highlight=False)
    out_console.print(
        f"  {sc.population.n_users} users, {sc.catalog.n_items} items, horizon "
        f"{sc.horizon / 86400:g} d (+{sc.warmup / 86400:g} d warm-up), "
        f"{sc.replications} replication(s), seed {sc.seed}, {sc.engine} engine",
        highlight=False,
    )
    out_console.print(f"  policies: {policies}", highlight=False)
    from .users.model import DEFAULT_COMPONENTS

    changed = [f"{role}={spec.type}" for role, spec in sc.user_model if spec.type != DEFAULT_COMPONENTS[role]]
    out_console.print(
        f"  user model: {'default' if not changed else 'default, with ' + ', '.join(changed)}", highlight=False
    )
    for note in _unused_behaviour(sc):
        out_console.print(f"  [yellow]note:[/] {note}", highlight=False)
    if sc.sweep:
        from .sweep import grid_points

        try:
            points = grid_points(sc, str(file))
        except ScenarioError as exc:
            _report_scenario_error(exc)
        axes = ", ".join(f"{path} ({len(values)} values)" for path, values in sc.sweep.items())
        out_console.print(
            f"  sweep: {len(points)} grid points over {axes}; all valid (run it with `recsim sweep`)",
            highlight=False,
        )


def _fmt(spec: str, mean: float, low: float, high: float) -> str:
    if math.isnan(mean):
        return "–"
    if math.isnan(low):
        return format(mean, spec)
    return f"{format(mean, spec)} ±{format((high - low) / 2, spec.replace('+', ''))}"


HEADLINE_COLUMNS = (
    ("watch_minutes_per_user_day", "watch\nmin/user/day", ".1f"),
    ("final_wellbeing", "final\nwellbeing", ".3f"),
    ("wellbeing_change", "Δ\nwellbeing", "+.3f"),
    ("consumed_extremeness", "consumed\nextremeness", ".3f"),
    ("consumed_extremeness_change", "Δ consumed\nextremeness", "+.3f"),
    ("appetite_change", "Δ\nappetite", "+.3f"),
    ("churn_rate", "churn\nrate", ".1%"),
)


def _summary_table(summary) -> Table:
    table = Table(
        title="Headline metrics over the horizon (mean ±95% CI half-width over replications)",
        caption="Δ = end of horizon minus start; oracles read hidden state (upper bounds only)",
    )
    table.add_column("policy", no_wrap=True)
    for _, label, _ in HEADLINE_COLUMNS:
        table.add_column(label, justify="right", no_wrap=True)
    for _, row in summary.iterrows():
        name = escape(row["policy"]) + (" [dim](oracle)[/]" if row["oracle"] else "")
        cells = [
            _fmt(spec, row[m], row[f"{m}_ci_low"], row[f"{m}_ci_high"])
            for m, _, spec in HEADLINE_COLUMNS
        ]
        table.add_row(name, *cells)
    return table


def _progress(title: str, n_tasks: int, quiet: bool):
    """A progress bar over tasks (fractions of simulated time within running tasks) and the
    callback that feeds it."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    done: dict[str, float] = {}
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet,
    )
    bar = progress.add_task(title, total=float(n_tasks), detail="")

    def on_progress(key: str, fraction: float) -> None:
        done[key] = fraction
        finished = sum(1 for f in done.values() if f >= 1.0)
        progress.update(bar, completed=sum(done.values()), detail=f"{finished}/{n_tasks} tasks")

    return progress, on_progress


def _execute(kind: str, sc, file: Path, out, overwrite, resume, workers, scheduler, quiet, n_tasks,
             report: bool = False) -> Path:
    """Run a scenario or a sweep with a progress bar; clean messages for the expected failures."""
    from .experiment import run_experiment
    from .storage import RunFolderExists, default_run_dir
    from .sweep import run_sweep

    name = sc.name if kind == "run" else f"{sc.name}-sweep"
    path = out if out is not None else default_run_dir(name)
    if path.exists() and not overwrite:
        _fail(f"{path} already exists; choose another --out or pass --overwrite")
    progress, on_progress = _progress(name, n_tasks, quiet)
    kwargs = dict(
        overwrite=overwrite, resume=resume, workers=workers, scheduler=scheduler,
        on_progress=on_progress, command=["recsim", *sys.argv[1:]],
    )
    try:
        with progress:
            if kind == "run":
                run_experiment(sc, path, report=report, **kwargs)
            else:
                run_sweep(sc, path, source=str(file), **kwargs)
    except RunFolderExists as exc:
        _fail(str(exc))
    except ScenarioError as exc:
        _report_scenario_error(exc)
    except KeyboardInterrupt:
        partial = path.parent / f".{path.name}.partial"
        err_console.print(
            f"[yellow]interrupted[/]: no complete folder was written; the partial output in "
            f"{escape(str(partial))} is marked 'interrupted' — run again with --resume to finish it",
            highlight=False,
        )
        raise typer.Exit(130) from None
    except RuntimeError as exc:
        if "Dask" not in str(exc):
            raise
        _fail(str(exc))
    return path


OutOption = typer.Option(None, "--out", "-o", help="Folder to write (default: runs/<scenario>-<timestamp>).")
SeedOption = typer.Option(None, "--seed", help="Root seed (overrides the scenario's).")
WorkersOption = typer.Option(
    None, "--workers", "-j", min=1, help="Worker processes (default: the scenario's, 0 = all cores)."
)
SchedulerOption = typer.Option(
    None, "--scheduler", metavar="ADDRESS", help="Run tasks on this Dask scheduler (needs the dask extra)."
)
OverwriteOption = typer.Option(False, "--overwrite", help="Replace an existing output folder.")
ResumeOption = typer.Option(
    False, "--resume", help="Finish an interrupted run into the same --out: only missing tasks run."
)
QuietOption = typer.Option(False, "--quiet", "-q", help="No progress bar.")


@app.command()
def run(
    file: Path = typer.Argument(..., help="Scenario YAML file."),
    out: Optional[Path] = OutOption,
    seed: Optional[int] = SeedOption,
    overrides: Optional[List[str]] = SetOption,
    workers: Optional[int] = WorkersOption,
    scheduler: Optional[str] = SchedulerOption,
    overwrite: bool = OverwriteOption,
    resume: bool = ResumeOption,
    quiet: bool = QuietOption,
    report: bool = typer.Option(
        True, "--report/--no-report", help="Write report/ (plots and report.html) into the run folder."
    ),
) -> None:
    """Run a scenario: every policy × replication, then write the run folder."""
    import pandas as pd

    sc = _load(file, overrides, seed)
    if sc.sweep:
        err_console.print(
            "[dim]note: this scenario has a sweep section; `recsim run` runs the base scenario, "
            "`recsim sweep` runs the grid[/]"
        )
    n_tasks = len(sc.policies) * sc.replications
    path = _execute("run", sc, file, out, overwrite, resume, workers, scheduler, quiet, n_tasks, report)
    summary = pd.read_csv(path / "summary.csv")
    out_console.print(_summary_table(summary))
    if (path / "comparison.csv").exists():
        _print_comparison(pd.read_csv(path / "comparison.csv"), gap_only=True)
    if (path / "report" / "report.html").exists():
        out_console.print(f"report: [bold]{escape(str(path / 'report' / 'report.html'))}[/]", highlight=False)
    out_console.print(f"run folder: [bold]{escape(str(path))}[/]", highlight=False)


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run folder written by `recsim run`."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for the report (default: RUN_DIR/report)."),
) -> None:
    """Write the plots (PNG) and a self-contained report.html for a run folder."""
    from .report import write_report

    if not (run_dir / "manifest.json").exists() or not (run_dir / "summary.csv").exists():
        _fail(f"{run_dir} is not a complete run folder (no manifest.json and summary.csv)")
    html = write_report(run_dir, out=out)
    out_console.print(f"report: [bold]{escape(str(html))}[/]", highlight=False)


@app.command()
def sweep(
    file: Path = typer.Argument(..., help="Scenario YAML file with a `sweep:` section."),
    out: Optional[Path] = OutOption,
    seed: Optional[int] = SeedOption,
    overrides: Optional[List[str]] = SetOption,
    workers: Optional[int] = WorkersOption,
    scheduler: Optional[str] = SchedulerOption,
    overwrite: bool = OverwriteOption,
    resume: bool = ResumeOption,
    quiet: bool = QuietOption,
) -> None:
    """Run a sweep: every grid point × policy × replication, into one folder."""
    import pandas as pd

    from .sweep import grid_points

    sc = _load(file, overrides, seed)
    try:
        points = grid_points(sc, str(file))
    except ScenarioError as exc:
        _report_scenario_error(exc)
    n_tasks = len(points) * len(sc.policies) * sc.replications
    path = _execute("sweep", sc, file, out, overwrite, resume, workers, scheduler, quiet, n_tasks)
    summary = pd.read_csv(path / "summary.csv")
    params = list(sc.sweep)
    table = Table(title=f"Sweep over {', '.join(params)}: watch time and final wellbeing (mean ±95% CI)")
    for column in ("point", *params, "policy", "watch min/user/day", "final wellbeing", "Δ appetite"):
        table.add_column(column, justify="right" if column != "policy" else "left")
    wide = summary.set_index(["point", "policy", "metric"])
    for (point, policy), _ in summary.groupby(["point", "policy"], sort=False):
        values = summary[(summary.point == point) & (summary.policy == policy)].iloc[0]
        cells = [str(point), *[str(values[p]) for p in params], escape(str(policy))]
        for metric, spec in (("watch_minutes_per_user_day", ".1f"), ("final_wellbeing", ".3f"), ("appetite_change", "+.3f")):
            row = wide.loc[(point, policy, metric)]
            cells.append(_fmt(spec, row["mean"], row["ci_low"], row["ci_high"]))
        table.add_row(*cells)
    out_console.print(table)
    out_console.print(f"sweep folder: [bold]{escape(str(path))}[/]", highlight=False)


def _interval_caption(comparison) -> tuple[str, str]:
    """Which intervals a comparison table shows, and what a reader must know about them at
    its number of replications (empty if nothing)."""
    from .stats import GOODHART, interval_note

    gap = comparison[comparison["metric"].isin(GOODHART)]
    n = int(gap["n_replications"].min()) if len(gap) else int(comparison["n_replications"].max())
    if n < 2:
        methods = "no intervals"
    elif "interval" in comparison:
        level = float(comparison["level"].iloc[0]) if "level" in comparison else 0.95
        methods = (
            f"{level:.0%} CI: paired t over replications, Fieller's for the watch-time gain"
        )
    else:  # a comparison.csv from an older version: whatever it used
        methods = "95% CI as in comparison.csv"
    note = interval_note(n)
    if n == 2:
        note += "; 5 or more replications give far narrower ones"
    elif n == 1:
        note += " (intervals need 2 replications or more, and 5 or more to be narrow)"
    return f"{n} paired replication{'s' if n != 1 else ''}; {methods}", note


def _print_comparison(comparison, gap_only: bool = False) -> None:
    if comparison.empty:
        return
    reference = comparison["reference"].iloc[0]
    metrics = (
        ("goodhart_watch_gain", "watch-time gain", "+.1%"),
        ("goodhart_wellbeing_change", "Δ final wellbeing", "+.3f"),
        ("goodhart_extremeness_change", "Δ consumed\nextremeness", "+.3f"),
    )
    if not gap_only:
        metrics += (
            ("appetite_change", "Δ appetite change", "+.3f"),
            ("churn_rate", "Δ churn", "+.1%"),
        )
    intervals, note = _interval_caption(comparison)
    table = Table(
        title=f"Goodhart gap vs {reference} ({intervals})",
        caption="differences under common random numbers: each replication's worlds are shared",
    )
    table.add_column("policy", no_wrap=True)
    for _, label, _ in metrics:
        table.add_column(label, justify="right", no_wrap=True)
    unbounded = False
    for policy, group in comparison.groupby("policy", sort=False):
        rows = group.set_index("metric")
        cells = []
        for metric, _, spec in metrics:
            if metric not in rows.index:
                cells.append("–")
                continue
            r = rows.loc[metric]
            low, high = r["ci_low"], r["ci_high"]
            text = format(r["difference"], spec)
            if not (math.isnan(low) or math.isnan(high)):
                text += f"\n[{format(low, spec)}, {format(high, spec)}]"
            elif r["n_replications"] >= 2:
                text += "\n" + escape("[unbounded]")  # Fieller's, reference mean ≈ 0
                unbounded = True
            cells.append(text)
        name = escape(str(policy)) + (" [dim](oracle)[/]" if bool(group["oracle"].iloc[0]) else "")
        table.add_row(name, *cells)
    if unbounded:
        table.caption += (
            "\n\\[unbounded]: the reference's mean is not distinguishable from 0 with this many "
            "replications, so no ratio is excluded"
        )
    out_console.print(table)
    if note:
        err_console.print(f"[yellow]warning:[/] Goodhart gap intervals: {escape(note)}", highlight=False)


@app.command()
def compare(
    run_dir: Path = typer.Argument(..., help="A run folder written by `recsim run`."),
    reference: Optional[str] = typer.Option(
        None, "--reference", "-r", help="Policy to compare with (default: the scenario's reference)."
    ),
) -> None:
    """Compare every policy with a reference, paired over replications; writes comparison.csv.

    Per-replication differences of the headline metrics with 95% paired t intervals, and the
    Goodhart gap (relative watch-time gain with Fieller's interval, wellbeing and extremeness
    change); the `interval` column of comparison.csv names each row's interval.
    """
    import pandas as pd
    from scipy import stats

    from .experiment import reference_policy
    from .stats import compare as paired

    reps_path = run_dir / "replications.csv"
    if not reps_path.exists():
        _fail(f"{run_dir} is not a complete run folder (no replications.csv)")
    sc = _load(run_dir / "scenario.yaml", None)
    replications = pd.read_csv(reps_path)
    name = reference or reference_policy(sc)
    try:
        table = paired(replications, name)
    except ValueError as exc:
        _fail(str(exc))
    table.to_csv(run_dir / "comparison.csv", index=False)
    _print_comparison(table)
    ratio = table["crn_variance_ratio"].replace([float("inf")], float("nan")).dropna()
    if len(ratio):
        out_console.print(
            f"common random numbers: the variance of paired differences is {ratio.median():.2f}× "
            "the variance with independent seeds (median over policies and metrics)",
            highlight=False,
        )
    n = int(table["n_replications"].max()) if len(table) else 0
    if 2 < n < 5:
        out_console.print(
            f"[dim]note: with {n} replications the t intervals are valid but wide (t quantile "
            f"{stats.t.ppf(0.975, n - 1):.2f}, not 1.96); more replications narrow them fastest[/]",
            highlight=False,
        )
    out_console.print(f"wrote {escape(str(run_dir / 'comparison.csv'))}", highlight=False)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files."""
    out_console.print_json(json.dumps(scenario_json_schema()))


@app.command()
def policies() -> None:
    """List the built-in policies and their parameters."""
    from .policies.registry import BUILTIN_POLICIES, resolve_policy

    table = Table(title="Built-in policies")
    table.add_column("type")
    table.add_column("oracle")
    table.add_column("parameters")
    table.add_column("description")
    for name in BUILTIN_POLICIES:
        cls = resolve_policy(name)
        params = ", ".join(f"{key}={value}" for key, value in cls.Params().model_dump(mode="json").items())
        doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        table.add_row(name, "yes" if cls.oracle else "", params or "–", " ".join(doc.split()))
    out_console.print(table)


@app.command()
def components() -> None:
    """List the built-in user-model components by role, with their parameters."""
    from .users.components import ROLES
    from .users.model import DEFAULT_COMPONENTS, builtin_components, component_params

    defaults = load_defaults()
    table = Table(title="Built-in user-model components (scenario key user_model.<role>)")
    table.add_column("role")
    table.add_column("type")
    table.add_column("parameters")
    table.add_column("description")
    for role, names in builtin_components().items():
        for name, cls in names.items():
            if name == DEFAULT_COMPONENTS[role]:
                section = component_params(role, None, defaults)[1]
                where = "population" if role == "sampler" else "behaviour"
                params = f"from `{where}:`" if section is defaults.behaviour else (
                    f"from `{where}.{_section_name(defaults, section)}`" if role != "sampler" else "from `population:`")
                label = f"{name} (default)"
            else:
                params = ", ".join(f"{k}={v}" for k, v in cls.Params().model_dump(mode="json").items()) or "–"
                label = name
            table.add_row(role, label, params, _first_sentence(cls.__doc__ or ""))
        table.add_section()
    out_console.print(table)
    out_console.print(
        f"Roles: {', '.join(ROLES)}. Your own: a subclass of the role's interface in recsim.users, "
        "named as \"module:Class\" (see README, \"Bringing your own user model\").",
        highlight=False,
    )


def _unused_behaviour(sc) -> list[str]:
    """Settings in a `behaviour:` section that no component of the scenario's model reads
    (its default component was replaced), e.g. behaviour.watch with response: lts_engagement."""
    from .config import BehaviourConfig
    from .users.model import DEFAULT_COMPONENTS, _builtins, resolve_component

    notes = []
    defaults = BehaviourConfig()
    for role, spec in sc.user_model:
        default_name = DEFAULT_COMPONENTS[role]
        default_cls, section = _builtins()[role][default_name]
        if spec.type == default_name or section in (None, "behaviour", "population"):
            continue
        if resolve_component(role, spec.type).Params is default_cls.Params:
            continue  # a subclass of the default reads the section too
        # every choice model takes its scan time from behaviour.choice unless given its own
        ignore = {"scan_time"} if role == "choice" else set()
        if getattr(sc.behaviour, section).model_dump(exclude=ignore) != getattr(defaults, section).model_dump(exclude=ignore):
            notes.append(f"behaviour.{section} is set but not used: {role} is {spec.type!r}")
    return notes


def _first_sentence(doc: str) -> str:
    text = " ".join(doc.replace("``", "").split())
    match = re.search(r"(?<!\bal)(?<!e\.g)(?<!i\.e)\. ", text)
    return text if match is None else text[: match.start() + 1]


def load_defaults():
    """A scenario of nothing but defaults (to show where default components' parameters live)."""
    from .config import scenario_from_dict

    return scenario_from_dict({"name": "defaults", "policies": ["random"]})


def _section_name(scenario, section) -> str:
    for name in type(scenario.behaviour).model_fields:
        if getattr(scenario.behaviour, name) is section:
            return name
    return "?"


@app.command()
def init(
    folder: Path = typer.Argument(Path("recsim-scenarios"), help="Folder to copy the example scenarios into."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace files that already exist there."),
) -> None:
    """Copy the example scenarios (baseline, rabbit_hole, the sweeps, RecSim's environments, a
    policy and a user model of one's own) into FOLDER, to run and edit."""
    from .examples import copy_examples

    try:
        written = copy_examples(folder, overwrite=overwrite)
    except OSError as exc:
        _fail(f"cannot write the example scenarios into {folder}: {exc.strerror or exc}")
    kept = "" if overwrite else " (files already there were kept; --overwrite replaces them)"
    out_console.print(f"wrote {len(written)} files into [bold]{escape(str(folder))}[/]{kept}", highlight=False)
    out_console.print(f"next: recsim run {escape(str(folder / 'baseline.yaml'))}", highlight=False)


def main() -> None:
    app()
