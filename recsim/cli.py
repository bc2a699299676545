"""The ``recsim`` command line (typer): run, validate, schema, policies."""

from __future__ import annotations

import json
import math
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


def _load(file: Path, overrides: list[str] | None, seed: int | None = None):
    try:
        return load_scenario(file, overrides or [], seed=seed)
    except ScenarioError as exc:
        err_console.print(
            f"[bold red]error:[/] {escape(exc.source)}: invalid scenario", highlight=False, soft_wrap=True
        )
        for path, message in exc.problems:
            err_console.print(
                f"  [bold]{escape(path or '<top level>')}[/]: {escape(message)}", highlight=False, soft_wrap=True
            )
        raise typer.Exit(EXIT_BAD_INPUT) from None


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
        f"{sc.replications} replication(s), seed {sc.seed}",
        highlight=False,
    )
    out_console.print(f"  policies: {policies}", highlight=False)


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


@app.command()
def run(
    file: Path = typer.Argument(..., help="Scenario YAML file."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Run folder to write (default: runs/<scenario>-<timestamp>)."
    ),
    seed: Optional[int] = typer.Option(None, "--seed", help="Root seed (overrides the scenario's)."),
    overrides: Optional[List[str]] = SetOption,
    workers: Optional[int] = typer.Option(
        None, "--workers", "-j", min=1, help="Worker processes (default: the scenario's, 0 = all cores)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run a scenario: every policy × replication, then write the run folder."""
    import pandas as pd
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .experiment import run_experiment
    from .storage import RunFolderExists, default_run_dir

    sc = _load(file, overrides, seed)
    n_tasks = len(sc.policies) * sc.replications
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
    bar = progress.add_task(f"{sc.name}", total=float(n_tasks), detail="")

    def on_progress(key: str, fraction: float) -> None:
        done[key] = fraction
        finished = sum(1 for f in done.values() if f >= 1.0)
        progress.update(bar, completed=sum(done.values()), detail=f"{finished}/{n_tasks} runs")

    path = out if out is not None else default_run_dir(sc.name)
    if path.exists() and not overwrite:
        _fail(f"{path} already exists; choose another --out or pass --overwrite")
    try:
        with progress:
            run_experiment(
                sc, path, overwrite=overwrite, workers=workers, on_progress=on_progress,
                command=["recsim", *sys.argv[1:]],
            )
    except RunFolderExists as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        partial = path.parent / f".{path.name}.partial"
        err_console.print(
            f"[yellow]interrupted[/]: no run folder was written; the partial output in {escape(str(partial))} "
            "is marked 'interrupted' in its manifest",
            highlight=False,
        )
        raise typer.Exit(130) from None
    summary = pd.read_csv(path / "summary.csv")
    out_console.print(_summary_table(summary))
    out_console.print(f"run folder: [bold]{path}[/]", highlight=False)


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


def main() -> None:
    app()
