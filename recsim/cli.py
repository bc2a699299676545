"""The ``recsim`` command line (typer): run, validate, schema, policies."""

from __future__ import annotations

import json
import math
import os
import re
import signal
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
if not out_console.is_terminal and "COLUMNS" not in os.environ:  # piped: no need to squeeze tables
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


_DEBUG = False  # --debug: show the full traceback of an error (set by _root, read by main)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="On an error, show the full Python traceback (also accepted after the command)."
    ),
) -> None:
    """Simulate recommendation platforms: engagement proxies against hidden user wellbeing."""
    global _DEBUG
    _DEBUG = _DEBUG or debug


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
    """Hold the scenario's own user-model components and policies (``module:Class`` or a
    function) to the conformance checks every built-in passes, before anything runs (a few
    milliseconds per component, well under a second per policy): a failure is an error of the
    scenario at the path naming it, with the line of user code when it raised."""
    from .testing import UserModelCheckError, check_user_model
    from .users.model import build_user_model

    problems = []
    roles = [role for role, spec in sc.user_model if ":" in spec.type]
    if roles:
        model = build_user_model(sc)
        for role in roles:
            try:
                with _user_code_exits():
                    check_user_model(model, role)
            except UserModelCheckError as exc:
                problems.append((f"user_model.{role}.type", _with_line(str(exc), exc)))
            except BaseException as exc:  # the check itself tripped over the component
                if isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
                    raise
                problems.append((f"user_model.{role}.type", _raised("its conformance check", exc)))
    problems += _check_user_policies(sc)
    problems += _check_scripted_rules(sc)
    problems += _check_creator_rule(sc)
    if problems:
        raise ScenarioError(source, problems)


def _check_user_policies(sc) -> list[tuple[str, str]]:
    """``check_policy`` on every policy of the scenario that runs user code (its type, or a
    policy it wraps, is ``module:Class`` or a function), built with its parameters, and on a
    user warm-up policy: ``(path, message)`` problems. With ``recommender.policy_time_limit``
    set, each check may take 5 times that limit (it makes about 150 small calls)."""
    from .engine.errors import CallLimit, TimedOut
    from .policies.registry import build_policy, resolve_policy, user_policy_types
    from .testing import PolicyCheckError, check_policy

    checks = [(f"policies.{index}.type", lambda spec=spec: build_policy(spec))
              for index, spec in enumerate(sc.policies) if user_policy_types(spec)]
    if ":" in sc.warmup_policy:
        checks.append(("warmup_policy", lambda: resolve_policy(sc.warmup_policy)()))
    limit = getattr(sc.recommender, "policy_time_limit", None)
    problems = []
    for path, build in checks:
        timer = CallLimit(5 * limit) if limit else None
        try:
            with _user_code_exits():
                try:
                    policy = build()
                except BaseException as exc:
                    if isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
                        raise
                    problems.append((path, _raised("constructing it with its params", exc)))
                    continue
                if timer is not None:
                    timer.begin()
                try:
                    check_policy(policy)
                finally:
                    if timer is not None:
                        timer.abort()
        except PolicyCheckError as exc:
            problems.append((path, _with_line(str(exc), exc)))
        except TimedOut as exc:
            problems.append((path, _with_line(
                f"its conformance check (check_policy) ran past 5 × recommender.policy_time_limit "
                f"({5 * limit:g} s): a call never returned or is far too slow", exc)))
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
                raise
            problems.append((path, _raised("its conformance check", exc)))
        finally:
            if timer is not None:
                timer.close()
    return problems


def _check_scripted_rules(sc) -> list[tuple[str, str]]:
    """``check_scripted_rule`` on every scripted group whose rule is ``module:Class``:
    ``(path, message)`` problems."""
    from .testing import ScriptedRuleCheckError, check_scripted_rule

    problems = []
    for index, group in enumerate(sc.population.scripted):
        if ":" not in group.rule:
            continue
        path = f"population.scripted.{index}.rule"
        try:
            with _user_code_exits():
                check_scripted_rule(group.rule, group.params)
        except ScriptedRuleCheckError as exc:
            problems.append((path, _with_line(str(exc), exc)))
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
                raise
            problems.append((path, _raised("its conformance check", exc)))
    return problems


def _check_creator_rule(sc) -> list[tuple[str, str]]:
    """``check_creator_rule`` on ``catalog.creators.rule`` if it is ``module:Class``:
    ``(path, message)`` problems."""
    from .testing import CreatorRuleCheckError, check_creator_rule

    creators = sc.catalog.creators
    if creators is None or ":" not in creators.rule:
        return []
    path = "catalog.creators.rule"
    try:
        with _user_code_exits():
            check_creator_rule(creators.rule, creators.params, n_creators=sc.catalog.n_creators)
    except CreatorRuleCheckError as exc:
        return [(path, _with_line(str(exc), exc))]
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
            raise
        return [(path, _raised("its conformance check", exc))]
    return []


def _user_code_exits():
    """Within: ``os._exit`` called by user code raises instead of ending the process."""
    import contextlib

    from .engine.errors import _intercept_exit

    @contextlib.contextmanager
    def intercepted():
        _intercept_exit(True)
        try:
            yield
        finally:
            _intercept_exit(False)

    return intercepted()


def _raised(what: str, exc: BaseException) -> str:
    from .engine.errors import ExitCalled
    from .plugins import short_message

    if isinstance(exc, ExitCalled):
        text = f"{what} called os._exit({exc.status})"
    elif isinstance(exc, SystemExit):
        text = f"{what} called sys.exit({exc.code!r})"
    else:
        text = f"{what} raised {short_message(exc)}"
    return _with_line(text, exc)


def _with_line(message: str, exc: BaseException) -> str:
    """``message`` and, when ``exc`` (or its cause) arose in user code, where: file:line and
    the line itself."""
    from .plugins import error_line

    if _DEBUG:  # --debug: the traceback of what the start-up check caught, before the summary
        import traceback

        sys.stderr.write("".join(traceback.format_exception(exc)))
    line = error_line(exc)
    if line is None or line.location in message:
        return message
    return f"{message} (at {line})"


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
    rec = sc.recommender
    out_console.print(
        f"  platform: slates of {rec.slate_size} from {rec.n_candidates} candidates per request"
        + (f" uploaded in the last {rec.candidate_window / 86400:g} d" if rec.candidate_window else "")
        + ("; watched items left out (recommender.exclude_watched)" if rec.exclude_watched
           else "; watched items can be served again (recommender.exclude_watched: false)"),
        highlight=False,
    )
    from .users.model import DEFAULT_COMPONENTS

    changed = [f"{role}={spec.type}" for role, spec in sc.user_model if spec.type != DEFAULT_COMPONENTS[role]]
    out_console.print(
        f"  user model: {'default' if not changed else 'default, with ' + ', '.join(changed)}", highlight=False
    )
    creators = sc.catalog.creators
    if creators is not None:
        moved = "" if len(set(creators.adapt)) == 3 else f" ({', '.join(creators.adapt) or 'nothing'} only)"
        out_console.print(
            f"  creators: {sc.catalog.n_creators} ({creators.split}), {creators.rule} every "
            f"{creators.period / 86400:g} d from {creators.signal.replace('_', ' ')}{moved}",
            highlight=False,
        )
    for line in _estimate_lines(sc):
        out_console.print(f"  {escape(line)}", highlight=False)
    for note in [*_unused_behaviour(sc), *_name_notes(sc), *_supply_notes(sc), *_learning_notes(sc)]:
        out_console.print(f"  [yellow]note:[/] {escape(note)}", highlight=False)
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


def _estimate_lines(sc) -> list[str]:
    """What the scenario will take (``recsim validate``): the resource estimate, and a note
    when its tasks on every core at once would not fit in memory."""
    from .config import default_workers, estimate_resources

    estimate = estimate_resources(sc)
    first, *rest = estimate.lines()
    lines = [f"estimate: {first}", *[f"          {line}" for line in rest]]
    workers = default_workers(sc, estimate.tasks)
    memory = estimate.machine_memory
    if memory and workers > 1 and workers * estimate.memory_per_task > memory:
        fit = max(1, int(memory // estimate.memory_per_task))
        lines.append(
            f"note: {workers} tasks at once would need more memory than this machine has; "
            f"run with --workers {fit} (or set workers: {fit})"
        )
    return lines


#: watches a heavy user makes in a day (the engagement oracle's users in scenarios/baseline.yaml
#: make about 17): the bound `recsim validate` holds a catalog to when watched items are left out
HEAVY_WATCHES_PER_DAY = 20
#: the share of the catalog a heavy user may watch before `recsim validate` notes the risk of
#: depletion (the default catalog's extreme tail, e > 0.4, is about 6% of it)
DEPLETION_SHARE = 0.02


def _supply_notes(sc) -> list[str]:
    """With ``recommender.exclude_watched``, a note when a heavy user could watch a sizeable
    share of the catalog: a policy that draws users to a small part of it (the extreme tail)
    can then exhaust that part, which changes results (docs/model.md §9)."""
    if not sc.recommender.exclude_watched:
        return []
    from .config import estimate_resources

    items = estimate_resources(sc, machine_memory=None).items  # the backlog and every upload
    watches = HEAVY_WATCHES_PER_DAY * (sc.warmup + sc.horizon) / 86400
    if watches < DEPLETION_SHARE * items:
        return []
    return [
        f"a heavy user can watch about {watches:,.0f} items over the run ({HEAVY_WATCHES_PER_DAY} a day), "
        f"{watches / items:.0%} of the {items:,.0f} the catalog will hold; with watched items left out of the "
        "candidates (recommender.exclude_watched) a policy that draws users to a small part of the catalog, "
        "such as its extreme tail, can run it dry, which changes results (docs/model.md §9). A larger "
        "catalog.n_items, or recommender.exclude_watched: false, avoids that"
    ]


def _learning_notes(sc) -> list[str]:
    """Policies that learn (their class defines ``fit``) in a run with no retrain: they would
    serve all along as they do before any fit."""
    from .policies.base import Policy
    from .policies.registry import resolve_policy

    interval = sc.recommender.retrain_interval
    if interval > 0 and interval < sc.warmup + sc.horizon:
        return []
    learners = []
    for spec in sc.policies:
        try:
            cls = resolve_policy(spec.type)
        except LookupError:  # reported by the policy checks
            continue
        if isinstance(cls, type) and cls.fit is not Policy.fit:
            learners.append(spec.name)
    if not learners:
        return []
    if interval <= 0:
        why = "recommender.retrain_interval is 0 (retraining off): no fit ever happens"
    else:
        why = (f"recommender.retrain_interval ({interval / 86400:g} d) is not shorter than the run (warm-up + "
               f"horizon, {(sc.warmup + sc.horizon) / 86400:g} d): no fit happens before the run's end")
    note = (
        f"{', '.join(learners)} {'learn' if len(learners) > 1 else 'learns'} from feedback (fit), but {why}, "
        f"so {'each' if len(learners) > 1 else 'it'} serves as it does untrained for the whole run; set "
        "recommender.retrain_interval (e.g. 1d) to let it learn"
    )
    return [note]


def _name_notes(sc) -> list[str]:
    """Policy names that Parquet readers guessing types from folder names (pandas, polars,
    duckdb without a schema) would not read back as text."""
    from .config import hive_ambiguous

    odd = [spec.name for spec in sc.policies if hive_ambiguous(spec.name)]
    if not odd:
        return []
    return [
        (
            f"policy name{'s' if len(odd) > 1 else ''} {', '.join(odd)} "
            f"{'look' if len(odd) > 1 else 'looks'} like numbers, "
            "dates, booleans or missing values: recsim keeps them as text, but a reader that "
            "guesses the type of policy=<name> folders or CSV cells does not; read the tables "
            'with their types (README "Outputs")'
        )
    ]


def _finite(value) -> bool:
    """A number that can be shown (not NaN, not infinite, not missing)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _fmt(spec: str, mean: float, low: float, high: float, sep: str = " ") -> str:
    """``mean ±half-width`` (``sep`` between them: a space, or a newline for narrow tables);
    ``–`` for an undefined mean (no value: nobody left, nothing watched), the mean alone
    without an interval."""
    if not _finite(mean):
        return "–"
    if not (_finite(low) and _finite(high)):
        return format(float(mean), spec)
    return f"{format(float(mean), spec)}{sep}±{format((float(high) - float(low)) / 2, spec.replace('+', ''))}"


#: (summary.csv metric, column header, format) of the table `recsim run` prints; every header
#: line is at most 9 characters so that the table fits an 80-column terminal
HEADLINE_COLUMNS = (
    ("watch_minutes_per_user_day", "watch\nmin/day", ".1f"),
    ("final_wellbeing", "final\nwellbeing", ".3f"),
    ("wellbeing_change", "Δ\nwellbeing", "+.3f"),
    ("consumed_extremeness", "extreme\nconsumed", ".3f"),
    ("consumed_extremeness_change", "Δ\nextreme\nconsumed", "+.3f"),
    ("appetite_change", "Δ\nappetite", "+.3f"),
    ("churn_rate", "churn\nrate", ".1%"),
)

#: the terminal width the printed tables are laid out for (they fit it: cells stack the
#: estimate over its interval, headers wrap, a long policy name folds)
TABLE_WIDTH = 80


def _narrow_table(title: str, caption: str) -> Table:
    """A table laid out to fit :data:`TABLE_WIDTH` columns: no vertical rules, one space of
    padding, a policy column that folds long names rather than cutting numbers."""
    from rich import box

    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True,
                  pad_edge=False, show_edge=False, show_lines=True)
    table.add_column("policy", overflow="fold", min_width=10)
    return table


def _policy_cell(name: object, oracle: object) -> str:
    """A policy's name, with ``(oracle)`` on a line of its own for a policy reading hidden state."""
    is_oracle = str(oracle).lower() == "true"
    return escape(str(name)) + ("\n[dim](oracle)[/]" if is_oracle else "")


def _summary_table(summary) -> Table:
    """The headline metrics of ``summary.csv`` (one row per policy) as printed by ``recsim run``:
    mean over its ±95% CI half-width in each cell; fits :data:`TABLE_WIDTH` columns."""
    table = _narrow_table(
        "Headline metrics over the horizon (mean, ±95% CI half-width over replications)",
        "watch min/day: per user; extreme consumed: mean extremeness of watched items; "
        "Δ = end of horizon minus start; oracles read hidden state (upper bounds only)",
    )
    for _, label, _ in HEADLINE_COLUMNS:
        table.add_column(label, justify="right", no_wrap=True)
    undefined = False
    for _, row in summary.iterrows():
        cells = [
            _fmt(spec, row.get(m), row.get(f"{m}_ci_low"), row.get(f"{m}_ci_high"), sep="\n")
            for m, _, spec in HEADLINE_COLUMNS
        ]
        undefined = undefined or "–" in cells
        table.add_row(_policy_cell(row["policy"], row.get("oracle", False)), *cells)
    if undefined:
        table.caption += ("\n– : undefined (nothing to average, e.g. no user watched anything; or a change "
                          "over a horizon of a single metrics bucket)")
    return table


#: seconds between plain progress lines when stderr is not a terminal (CI, Slurm logs);
#: the environment variable RECSIM_PROGRESS_SECONDS overrides it
PLAIN_PROGRESS_SECONDS = 30.0


class _PlainProgress:
    """Progress for logs (stderr not a terminal): a plain line at the start, then one at most
    every ``every`` seconds of wall time while tasks advance, and one at the end —
    ``<title>: 37.5% of simulated time, 3/8 tasks done, 12 s elapsed``."""

    def __init__(self, title: str, n_tasks: int, every: float):
        self.title, self.n_tasks, self.every = title, n_tasks, every
        self.done: dict[str, float] = {}
        self.started = self.last = 0.0

    def _line(self) -> None:
        import time

        fraction = sum(self.done.values()) / max(self.n_tasks, 1)
        finished = sum(1 for f in self.done.values() if f >= 1.0)
        elapsed = time.monotonic() - self.started
        err_console.print(
            f"{escape(self.title)}: {fraction:.1%} of simulated time, {finished}/{self.n_tasks} tasks done, "
            f"{elapsed:.0f} s elapsed", highlight=False, soft_wrap=True,
        )
        self.last = time.monotonic()

    def __enter__(self) -> "_PlainProgress":
        import time

        self.started = time.monotonic()
        self._line()
        return self

    def update(self, key: str, fraction: float) -> None:
        import time

        self.done[key] = fraction
        if time.monotonic() - self.last >= self.every:
            self._line()

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None:
            self._line()
        return False


def _progress(title: str, n_tasks: int, quiet: bool):
    """A progress display over tasks (fractions of simulated time within running tasks) and
    the callback that feeds it: a live bar on a terminal, plain periodic lines otherwise
    (:class:`_PlainProgress`), nothing with ``quiet``."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    if not quiet and not err_console.is_terminal:
        try:
            every = float(os.environ.get("RECSIM_PROGRESS_SECONDS", PLAIN_PROGRESS_SECONDS))
        except ValueError:
            every = PLAIN_PROGRESS_SECONDS
        plain = _PlainProgress(title, n_tasks, every)
        return plain, plain.update

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
    from .cluster_errors import ClusterSetupError
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
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (Terminated)
        _report_interrupt(exc, path)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except ClusterSetupError as exc:  # found before any task ran: the input to fix
        _fail(str(exc))
    except Exception as exc:  # a failed run: say what it left (reported by _report_failure)
        partial = path.parent / f".{path.name}.partial"
        if partial.is_dir():
            exc.recsim_partial = partial
        raise
    return path


def _report_interrupt(exc: BaseException, path: Path) -> None:
    """Say what an interrupted run left: nothing, its partial output (and what its manifest
    says), or — interrupted as it was being completed — a complete folder."""
    what = f"terminated ({exc})" if isinstance(exc, Terminated) else "interrupted"
    partial = path.parent / f".{path.name}.partial"
    try:
        status = json.loads((partial / "manifest.json").read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        status = None
    if path.exists() and not partial.exists():
        told = f"the run folder {path} was already complete"
    elif status is None:
        told = "nothing was written"
    elif status == "interrupted":
        told = (f"no complete folder was written; the partial output in {partial} is marked 'interrupted' "
                "— run again with --resume to finish it")
    else:
        told = (f"no complete folder was written; the partial output in {partial} could not be marked "
                f"'interrupted' (its manifest says '{status}') — run again with --resume to finish it")
    err_console.print(f"[yellow]{escape(what)}[/]: {escape(told)}", highlight=False, soft_wrap=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived (``timeout``, Slurm, Kubernetes, a closed terminal): the
    command stops as on Ctrl-C — workers stopped, the partial output marked ``interrupted``,
    exit code 130. ``str()`` is the signal's name."""


def _terminate(signum: int, frame) -> None:
    raise Terminated(signal.Signals(signum).name)


def _handle_termination() -> None:
    """Make SIGTERM and SIGHUP raise :class:`Terminated` (a KeyboardInterrupt) in the main
    thread, unless something (``nohup``, an embedding program) has set their handling."""
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _terminate)


def _workers(workers: int | None) -> int | None:
    """``--workers``: None (the scenario's setting), 0 (one per core) or a number of processes."""
    if workers == 0:
        return os.cpu_count() or 1
    return workers


OutOption = typer.Option(None, "--out", "-o", help="Folder to write (default: runs/<scenario>-<timestamp>).")
SeedOption = typer.Option(None, "--seed", help="Root seed (overrides the scenario's).")
WorkersOption = typer.Option(
    None, "--workers", "-j", min=0, help="Worker processes (default: the scenario's; 0 = one per core)."
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
    from .analysis import read_csv

    sc = _load(file, overrides, seed)
    if sc.sweep:
        err_console.print(
            "[dim]note: this scenario has a sweep section; `recsim run` runs the base scenario, "
            "`recsim sweep` runs the grid[/]"
        )
    if sc.population.takeover is not None:
        err_console.print(
            "[dim]note: population.takeover is set: this runs the bot arm alone (the taken-over users "
            "count among the modelled users); `recsim audit` runs both arms and compares them[/]"
        )
    n_tasks = len(sc.policies) * sc.replications
    path = _execute("run", sc, file, out, overwrite, resume, _workers(workers), scheduler, quiet, n_tasks, report)
    summary = read_csv(path / "summary.csv")
    out_console.print(_summary_table(summary))
    if (path / "comparison.csv").exists():
        _print_comparison(read_csv(path / "comparison.csv"), gap_only=True)
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

    if (run_dir / "trajectories.parquet").exists():
        _fail(f"{run_dir} is an audit folder (recsim audit): read it with recsim.audit or "
              "notebooks/05_audits.ipynb; `recsim report` reads run and sweep folders")
    sweep = (run_dir / "grid.csv").exists()
    if not (run_dir / "manifest.json").exists() or not (run_dir / "summary.csv").exists() or \
            not (sweep or (run_dir / "replications.csv").exists()):
        _fail(f"{run_dir} is not a complete run folder (no manifest.json, summary.csv and replications.csv)")
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
    from .analysis import read_csv

    from .sweep import grid_points

    sc = _load(file, overrides, seed)
    try:
        points = grid_points(sc, str(file))
    except ScenarioError as exc:
        _report_scenario_error(exc)
    n_tasks = len(points) * len(sc.policies) * sc.replications
    path = _execute("sweep", sc, file, out, overwrite, resume, _workers(workers), scheduler, quiet, n_tasks)
    summary = read_csv(path / "summary.csv")
    table = _sweep_table(summary, list(sc.sweep))
    out_console.print(table)
    out_console.print(f"sweep folder: [bold]{escape(str(path))}[/]", highlight=False)


def _grid_value(value) -> str:
    """A swept value as the scenario writes it: ``null`` for none (read back from CSV as NaN)."""
    try:
        missing = value is None or (isinstance(value, float) and math.isnan(value))
    except TypeError:
        missing = False
    return "null" if missing else str(value)


def _sweep_table(summary, params: list[str]) -> Table:
    """The table `recsim sweep` prints from its ``summary.csv`` (long: point, policy, metric):
    per grid point and policy, watch time, final wellbeing and the appetite change, mean over
    ±95% CI half-width; fits :data:`TABLE_WIDTH` columns (parameter paths and policy names
    fold)."""
    from rich import box

    table = Table(title=f"Sweep over {', '.join(params)}: mean, ±95% CI half-width over replications",
                  caption="watch min/day: per user; Δ = end of horizon minus start",
                  box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True,
                  pad_edge=False, show_edge=False, show_lines=True)
    table.add_column("point", justify="right", no_wrap=True)
    for param in params:
        table.add_column(param, justify="right", overflow="fold")
    table.add_column("policy", overflow="fold", min_width=8)
    metrics = (("watch_minutes_per_user_day", "watch\nmin/day", ".1f"), ("final_wellbeing", "final\nwellbeing", ".3f"),
               ("appetite_change", "Δ\nappetite", "+.3f"))
    for _, label, _ in metrics:
        table.add_column(label, justify="right", no_wrap=True)
    wide = summary.set_index(["point", "policy", "metric"])
    for (point, policy), group in summary.groupby(["point", "policy"], sort=False):
        values = group.iloc[0]
        cells = [str(point), *[escape(_grid_value(values[p])) for p in params], escape(str(policy))]
        for metric, _, spec in metrics:
            row = wide.loc[(point, policy, metric)]
            cells.append(_fmt(spec, row["mean"], row["ci_low"], row["ci_high"], sep="\n"))
        table.add_row(*cells)
    return table


def _interval_caption(comparison) -> tuple[str, str]:
    """Which intervals a comparison table shows, and what a reader must know about them at
    its number of replications (empty if nothing)."""
    from .stats import GOODHART, interval_note

    gap = comparison[comparison["metric"].isin(GOODHART)]
    if len(gap) and not (gap["n_replications"] > 0).any():
        n = 0
    else:
        gap = gap[gap["n_replications"] > 0]
        n = int(gap["n_replications"].min()) if len(gap) else int(comparison["n_replications"].max())
    if n == 0:
        return "no paired replication has values", (
            "nothing to compare: no replication has values of the Goodhart gap for both "
            "policies (no user active in the horizon?)"
        )
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
        ("goodhart_watch_gain", "watch-time\ngain", "+.1%"),
        ("goodhart_wellbeing_change", "final\nwellbeing\n− ref.", "+.3f"),
        ("goodhart_extremeness_change", "extreme\nconsumed\n− ref.", "+.3f"),
    )
    if not gap_only:
        metrics += (
            ("appetite_change", "Δ appetite\n− ref.", "+.3f"),
            ("churn_rate", "churn rate\n− ref.", "+.1%"),
        )
    intervals, note = _interval_caption(comparison)
    table = _narrow_table(
        f"Goodhart gap vs {reference} ({intervals})",
        "differences under common random numbers: each replication's worlds are shared",
    )
    for _, label, _ in metrics:
        table.add_column(label, justify="right", no_wrap=True)
    unbounded = undefined = False
    for policy, group in comparison.groupby("policy", sort=False):
        rows = group.set_index("metric")
        cells = []
        for metric, _, spec in metrics:
            if metric not in rows.index:
                cells.append("–")
                continue
            r = rows.loc[metric]
            low, high = r["ci_low"], r["ci_high"]
            if not _finite(r["difference"]):
                cells.append("–")  # undefined: no values, or a reference mean of 0
                undefined = True
                continue
            text = format(float(r["difference"]), spec)
            if _finite(low) and _finite(high):
                text += f"\n[{format(float(low), spec)},\n {format(float(high), spec)}]"
            elif r["n_replications"] >= 2:
                text += "\n" + escape("[unbounded]")  # Fieller's, reference mean ≈ 0
                unbounded = True
            cells.append(text)
        table.add_row(_policy_cell(policy, group["oracle"].iloc[0]), *cells)
    if undefined:
        table.caption += "\n– : undefined (no values to compare, or a reference mean of 0)"
    if unbounded:
        table.caption += (
            "\n\\[unbounded]: the reference's mean is not distinguishable from 0 with this many "
            "replications, so no ratio is excluded"
        )
    out_console.print(table)
    if note:
        err_console.print(f"[yellow]warning:[/] Goodhart gap intervals: {escape(note)}", highlight=False)


def _run_reference(run_dir: Path, replications) -> str:
    """The reference policy of a finished run, read from its folder (``scenario.yaml`` as
    plain data: reading a run never imports its policies' or user model's code, which may not
    be importable from here): the scenario's ``reference``, else ``chronological`` when it ran,
    else the first policy."""
    import yaml

    try:
        data = yaml.safe_load((run_dir / "scenario.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    if data.get("reference"):
        return str(data["reference"])
    names = [p.get("name") for p in data.get("policies") or [] if isinstance(p, dict) and p.get("name")]
    if not names:  # no usable scenario.yaml: the policies as the run's table lists them
        names = list(dict.fromkeys(str(p) for p in replications["policy"]))
    return "chronological" if "chronological" in names else names[0]


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
    from scipy import stats

    from .analysis import read_csv, write_csv
    from .stats import compare as paired

    reps_path = run_dir / "replications.csv"
    if not reps_path.exists():
        _fail(f"{run_dir} is not a complete run folder (no replications.csv)")
    replications = read_csv(reps_path)
    name = reference or _run_reference(run_dir, replications)
    try:
        table = paired(replications, name)
    except ValueError as exc:
        _fail(str(exc))
    if table.empty:
        stale = run_dir / "comparison.csv"
        if stale.exists():  # left by an earlier version: a run of one policy compares nothing
            stale.unlink()
        out_console.print(
            f"nothing to compare: the run has one policy ({escape(str(name))}); "
            "no comparison.csv written",
            highlight=False,
        )
        return
    write_csv(table, run_dir / "comparison.csv")
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
def audit(
    file: Path = typer.Argument(..., help="Scenario YAML file with population.takeover (the bots' design)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder to write (default: runs/<scenario>-audit-<timestamp>)."),
    seed: Optional[int] = SeedOption,
    overrides: Optional[List[str]] = SetOption,
    overwrite: bool = OverwriteOption,
    quiet: bool = QuietOption,
) -> None:
    """Counterfactual-bot audit: every policy × replication twice, under common random numbers —
    the forked users going on by the behaviour model, and bots taking over from them after
    population.takeover.after_watches of their own watches. Writes trajectories.parquet (one
    row per watch and arm), differences.csv (bot − user by watch index) and summary.csv."""
    from .analysis import write_csv
    from .audit import audit_summary, counterfactual_bots, paired_differences
    from .storage import RunFolder, default_run_dir

    sc = _load(file, overrides, seed)
    takeover = sc.population.takeover
    if takeover is None:
        _fail(f"{file}: population.takeover is not set; an audit needs the bots' design "
              "(users, after_watches, rule), e.g. scenarios/audit.yaml")
    path = out if out is not None else default_run_dir(f"{sc.name}-audit")
    if path.exists() and not overwrite:
        _fail(f"{path} already exists; choose another --out or pass --overwrite")
    n_runs = 2 * len(sc.policies) * sc.replications
    progress, on_progress = _progress(f"{sc.name} audit", n_runs, quiet)
    done: list[str] = []

    def step(label: str) -> None:
        if done:
            on_progress(done[-1], 1.0)
        done.append(label)
        on_progress(label, 0.0)

    with progress, RunFolder(path, sc.dump(), overwrite=overwrite, command=["recsim", *sys.argv[1:]]) as folder:
        trajectories = counterfactual_bots(sc, progress=step)
        if done:
            on_progress(done[-1], 1.0)
        trajectories.to_parquet(folder.work / "trajectories.parquet", index=False)
        write_csv(paired_differences(trajectories), folder.work / "differences.csv")
        summary = audit_summary(trajectories, takeover.after_watches)
        write_csv(summary, folder.work / "summary.csv")
        if not (summary["period"] == "after fork").any():
            err_console.print(
                f"[yellow]warning:[/] no forked user reached {takeover.after_watches} watches in the horizon: "
                "nothing was forked (a shorter population.takeover.after_watches or a longer horizon)",
                highlight=False, soft_wrap=True)
        folder.manifest["audit"] = takeover.model_dump(mode="json")
    table = _narrow_table(
        f"Counterfactual bots ({takeover.rule}) forked from {takeover.users} users after "
        f"{takeover.after_watches} watches: consumed true extremeness",
        "bot − user: mean over the forked users' watches, 95% t interval over replications; "
        "before the fork the arms share every draw",
    )
    for column in ("period", "user", "bot", "bot − user"):
        table.add_column(column, justify="right" if column != "period" else "left", no_wrap=True)
    for _, row in summary.iterrows():
        table.add_row(escape(str(row["policy"])), str(row["period"]), f"{row['user']:.3f}", f"{row['bot']:.3f}",
                      _fmt("+.3f", row["difference"], row["ci_low"], row["ci_high"], sep="\n"))
    out_console.print(table)
    out_console.print(f"audit folder: [bold]{escape(str(path))}[/]", highlight=False)


@app.command()
def reproduce(
    only: Optional[List[str]] = typer.Option(None, "--only", help="Run only this target (key or number); repeatable."),
    size: str = typer.Option("full", "--size", help="full (the README's figures) or fast (the test suite's)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write validation.csv and validation.md here."),
    write_readme: bool = typer.Option(False, "--write-readme",
                                      help="Replace the table in README.md (the source tree's); with --only, "
                                           "only those targets' rows."),
    list_: bool = typer.Option(False, "--list", help="List the targets and exit."),
) -> None:
    """The validation suite: published and closed-form results (choice models, Hawkes returns,
    RecSim's long-term satisfaction and interest evolution, preference dynamics, Covington's
    identity, session mechanics …), each measured by recsim's own components and engines and
    compared with its expected value within a stated tolerance. Prints a table; exits 1 if a
    target's status differs from the documented one."""
    from .validation import SIZES, TARGETS, run_target, target
    from .validation.table import markdown_table, write_readme_table

    if size not in SIZES:
        _fail(f"--size must be one of {', '.join(SIZES)}, not {size!r}")
    if write_readme and size != "full":
        _fail("--write-readme writes the README's figures, which are full size: leave out --size fast")
    try:
        chosen = [target(key) for key in only] if only else list(TARGETS)
    except LookupError as exc:
        _fail(str(exc))
    chosen = list(dict.fromkeys(chosen))  # a target named twice (by key and number) runs once
    readme = Path(__file__).resolve().parent.parent / "README.md"
    if write_readme and not list_:  # checked before anything runs: a full run takes a quarter of an hour
        from .validation.table import BEGIN

        try:
            has_markers = BEGIN in readme.read_text(encoding="utf-8")
        except OSError:
            has_markers = False
        if not has_markers:
            _fail(f"--write-readme rewrites the table in the README of a source checkout; {readme} has none "
                  "(an installed recsim: use --out instead)")
    if out is not None and not list_:
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = out / ".recsim-write-probe"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            _fail(f"--out {out}: cannot write there ({exc.strerror or exc})")
    if list_:
        for t in chosen:
            out_console.print(f"{t.number:>2}  {t.key:<24} {t.title}", highlight=False, soft_wrap=True)
        return
    rows, changed = [], []
    for t in chosen:
        err_console.print(f"{t.number:>2} {t.key}: running ({size})…", highlight=False)
        outcome = run_target(t, size)
        rows.append((t, outcome))
        if outcome.status != t.documented_status(size):
            changed.append(t)
        err_console.print(f"   {outcome.status}: {outcome.value} ({outcome.seconds:.1f} s)", highlight=False)
    from rich import box

    caption = f"details: {out / 'validation.csv'}" if out is not None else "details: validation.csv (--out DIR)"
    if size == "fast":
        caption += "; fast-size statuses are held to their own documented values (validation.csv: documented_status)"
    table = Table(title=f"What recsim reproduces ({size} size)", caption=caption,
                  box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False, show_edge=False,
                  show_lines=True, width=min(TABLE_WIDTH, out_console.width))
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("target", overflow="fold", ratio=2)
    table.add_column("recsim gives", overflow="fold", ratio=5)
    table.add_column("status", overflow="fold", ratio=2)
    for t, o in rows:
        shown = o.status if o.status == t.status else f"{o.status} (full size: {t.status})"
        table.add_row(str(t.number), escape(t.title), escape(o.value), shown)
    out_console.print(table)
    text = markdown_table(rows, size)
    if out is not None:
        import pandas as pd

        from .analysis import write_csv

        out.mkdir(parents=True, exist_ok=True)
        write_csv(pd.DataFrame([{
            "number": t.number, "key": t.key, "title": t.title, "source": t.source, "expected": t.expected,
            "tolerance": t.tolerance, "value": o.value, "status": o.status, "documented_status": t.documented_status(size),
            "seconds": round(o.seconds, 2), "details": "\n".join(o.details)} for t, o in rows]),
            out / "validation.csv")
        (out / "validation.md").write_text(text + "\n", encoding="utf-8")
    if write_readme:
        try:
            write_readme_table(readme, text, merge=bool(only))  # --only: those targets' rows
        except (OSError, ValueError) as exc:
            _fail(str(exc))
        out_console.print(f"README table written: {readme}", highlight=False)
    if changed:
        err_console.print(f"[red]status differs from the documented one:[/] {', '.join(t.key for t in changed)}",
                          highlight=False)
        raise typer.Exit(1)


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
        params = ", ".join(f"{key}={value}" for key, value in cls.Params.model_construct().model_dump(mode="json").items())
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
                params = ", ".join(f"{k}={v}" for k, v in cls.Params.model_construct().model_dump(mode="json").items()) or "–"
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
    creators = sc.catalog.creators
    if creators is not None and creators.period >= sc.horizon:
        notes.append(f"catalog.creators.period ({creators.period / 86400:g} d) is not shorter than the horizon "
                     f"({sc.horizon / 86400:g} d): creators never adapt")
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


EXIT_RUN_FAILED = 1
EXIT_INTERRUPTED = 130


def main() -> None:
    """The ``recsim`` command: every error ends in one screen and an exit code — 2 for bad
    input (the scenario, or user code found wanting before the run), 1 for a failure during
    the run, 130 for an interrupt. ``--debug`` (anywhere on the command line) shows the full
    traceback instead."""
    global _DEBUG
    args = sys.argv[1:]
    if "--debug" in args:  # a global option, accepted after the command too
        _DEBUG = True
        args = ["--debug", *(arg for arg in args if arg != "--debug")]
    _handle_termination()
    from .kernels import KernelConfigError, _requested_backend

    try:
        _requested_backend()  # RECSIM_KERNELS: checked before any work (it does not import numba)
    except KernelConfigError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT)
    try:
        app(args=args)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        if _DEBUG:
            raise
        err_console.print("[yellow]interrupted[/]", highlight=False)
        sys.exit(EXIT_INTERRUPTED)
    except BaseException as exc:  # the last line of defence: one screen
        if _DEBUG:
            raise
        sys.exit(_report_failure(exc))


#: at most this many lines of an error's report (one screen)
_MAX_REPORT_LINES = 20


def _report_failure(exc: BaseException) -> int:
    """Print one screen about an exception that reached the top level; its exit code."""
    from concurrent.futures import BrokenExecutor

    from .engine.errors import TaskError, WorkerDied
    from .plugins import error_line, short_message
    from .storage import RunFolderError

    code = EXIT_RUN_FAILED
    if isinstance(exc, RunFolderError):  # the disk: exit 2 if found before the run started
        lines = exc.lines()
        code = EXIT_BAD_INPUT if exc.before_run else EXIT_RUN_FAILED
    elif isinstance(exc, ScenarioError):
        lines = [f"{exc.source}: invalid scenario", *(f"  {p or '<top level>'}: {m}" for p, m in exc.problems)]
        code = EXIT_BAD_INPUT
    elif isinstance(exc, TaskError):
        lines = exc.lines()
    elif isinstance(exc, BrokenExecutor):
        lines = WorkerDied().lines()
    else:  # not foreseen: what and where, in a few lines
        lines = [short_message(exc, limit=400)]
        lines += [f"  {note}" for note in getattr(exc, "__notes__", ())]
        tb = exc.__traceback__
        where = error_line(exc)  # its traceback's last user frame, or the worker's it came from
        if where is not None:
            lines.append(f"  your code: {where.location}, in {where.function}")
            lines.append(f"      {where.source}")
        else:
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            if tb is not None:
                lines.append(f"  at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}, in {tb.tb_frame.f_code.co_name}")
    if len(lines) > _MAX_REPORT_LINES - 1:
        lines = [*lines[: _MAX_REPORT_LINES - 2], f"  … ({len(lines) - _MAX_REPORT_LINES + 2} more lines)"]
    partial = getattr(exc, "recsim_partial", None)
    if partial is not None:  # what the failed run left
        lines.append(f"no complete folder was written; the tasks that finished are in {partial} (marked failed): "
                     "after a fix, run again with --overwrite (--resume finishes it only if the scenario, "
                     "your code and the files it names are unchanged)")
    first, *rest = lines
    err_console.print(f"[bold red]error:[/] {escape(first)}", highlight=False, soft_wrap=True)
    for line in rest:
        err_console.print(escape(line), highlight=False, soft_wrap=True)
    if code != EXIT_BAD_INPUT:
        err_console.print("[dim]run with --debug for the traceback[/]", highlight=False, soft_wrap=True)
    return code
