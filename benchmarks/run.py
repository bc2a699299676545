"""Benchmark the simulator: decisions/s, events/s, wall time and peak memory, against its ceilings.

    python benchmarks/run.py                  # the default set (about 8 minutes on 2 cores)
    python benchmarks/run.py --quick          # small sizes only (a few minutes, both engines)
    python benchmarks/run.py --full           # also 1k and 100k users over the full 7 days
    python benchmarks/run.py --only scale-10k --repeat 3 --out result.json
    python benchmarks/run.py --workload engagement:2000:3    # any policy:users:days

A decision is one slate served and answered. Every workload runs `benchmarks/reference.yaml`
(10k users, 5k items, 20 topics, slate 10 from 200 candidates, 7 days, daily retrain) with the
policy, population size and horizon of the workload, in its own process (so its peak RSS is its
own) pinned to one CPU, `--repeat` times; the table shows medians. The same run measures the ceilings
on this machine (see benchmarks/ceilings.py): bare SimPy timeouts/s; a vectorized NumPy loop
doing the per-decision arithmetic for all users at once; and one decision's arithmetic compiled
with numba (a dependency of the package), once with a learned linear ranker's scoring and once with the
engagement oracle's. Every rate is also given as a ratio to them: a learned-ranker workload to
the learned compiled ceiling, an oracle workload to the oracle's. Without numba the compiled
ceilings are reported as unavailable. See benchmarks/README.md for the workloads, the metrics
and how to read them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import typing
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "reference.yaml"

#: name: (policy, users, days). `engagement` is the learned ranker of the issue ("retrained
#: daily"); `engagement_oracle` ranks by the true expected watch time (no training cost).
WORKLOADS: dict[str, tuple[str, int, float]] = {
    "reference-oracle": ("engagement_oracle", 10_000, 7),
    "reference-engagement": ("engagement", 10_000, 7),
    "scale-1k": ("engagement_oracle", 1_000, 1),
    "scale-10k": ("engagement_oracle", 10_000, 1),
    "scale-100k": ("engagement_oracle", 100_000, 1),
    "scale-1k-7d": ("engagement_oracle", 1_000, 7),
    "scale-100k-7d": ("engagement_oracle", 100_000, 7),
    "quick-engagement": ("engagement", 1_000, 2),
}
SETS = {
    "quick": ["scale-1k", "scale-10k", "quick-engagement"],
    "default": ["reference-oracle", "reference-engagement", "scale-1k", "scale-10k", "scale-100k"],
    "full": ["reference-oracle", "reference-engagement", "scale-1k", "scale-10k", "scale-100k",
             "scale-1k-7d", "scale-100k-7d"],
}
TARGET_DECISIONS_PER_SECOND = 20_000  # reference engine, reference workload (the target)
TARGET_BATCHED_DECISIONS_PER_SECOND = 150_000  # batched engine, reference workload, one core
TARGET_BATCHED_SHARE_OF_NUMPY = 0.40  # ... and at least this share of the NumPy ceiling
TARGET_MILLION_PEAK_MIB = 4096  # 1M users x 7 days
MILLION = HERE / "million.yaml"
TARGET_SCALING = 1.5  # per-decision cost at 100k users within 1.5x of 1k users
#: batched engine, reference workloads: decisions/s as a share of the matching compiled ceiling
TARGET_SHARE_OF_COMPILED = {"learned": 0.5, "oracle": 0.7}
#: policy -> the compiled ceiling a workload of that policy is compared with (ceilings.py): the
#: learned linear rankers to the compiled learned ranker, the engagement oracle to its kernel
COMPILED_CEILING = {"engagement": "learned", "harm_penalized": "learned", "engagement_oracle": "oracle"}
#: users and decisions per user of the compiled ceilings (ceilings.compiled_ceiling), --quick too
COMPILED_USERS, COMPILED_STEPS = 10_000, 10


def _engines() -> list[str]:
    """Engines the installed recsim offers (the scenario's `engine` field)."""
    from recsim.config import Scenario

    return list(typing.get_args(Scenario.model_fields["engine"].annotation)) or ["reference"]


# ----------------------------------------------------------------------------- child processes
def _workload(spec: dict, queue) -> None:
    from recsim.config import load_scenario
    from recsim.experiment import make_tasks, run_task

    overrides = [
        f"population.n_users={spec['users']}",
        f"horizon={spec['days']}d",
        f"policies=[{spec['policy']}]",
        f"engine={spec['engine']}",
    ]
    sc = load_scenario(spec["scenario"], overrides)
    with tempfile.TemporaryDirectory() as tmp:
        task = make_tasks(sc, Path(tmp))[0]
        start = time.perf_counter()
        result = run_task(task)
        wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    queue.put({
        "wall_seconds": wall,
        "decisions": result.n_decisions,
        "events": result.n_events,
        "peak_rss_mib": peak_kib / 1024,
    })


def _million(path: str, overrides: tuple[str, ...], queue) -> None:
    """benchmarks/million.yaml (its own engine, policy and sizes, with ``overrides``), with progress."""
    from recsim.config import load_scenario
    from recsim.experiment import make_tasks, run_task

    sc = load_scenario(path, list(overrides))
    with tempfile.TemporaryDirectory() as tmp:
        task = make_tasks(sc, Path(tmp))[0]
        start = time.perf_counter()
        last = [start]

        def progress(fraction: float) -> None:
            now = time.perf_counter()
            if now - last[0] > 60:
                last[0] = now
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"  million: {fraction:.1%} of simulated time after {now - start:,.0f} s; "
                      f"peak RSS so far {rss:,.0f} MiB", flush=True)

        result = run_task(task, progress)
        wall = time.perf_counter() - start
        events_bytes = sum(f.stat().st_size for f in Path(tmp).rglob("*.parquet"))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({
        "wall_seconds": wall,
        "decisions": result.n_decisions,
        "events": result.n_events,
        "peak_rss_mib": peak_kib / 1024,
        "output_mib": events_bytes / 2**20,
        "users": sc.population.n_users,
        "days": sc.horizon / 86400,
        "engine": sc.engine,
        "policy": sc.policies[0].type,
        "overrides": list(overrides),
    })


def _ceiling(kind: str, steps: int, queue) -> None:
    """Measure ceiling ``kind`` (``steps``: decisions per user of a compiled one) into ``queue``."""
    sys.path.insert(0, str(HERE))
    import ceilings

    if kind == "simpy":
        queue.put(ceilings.simpy_timeouts_per_second())
    elif kind.startswith("compiled-"):  # the numba kernel: a dict, or why it is unavailable
        try:
            queue.put(ceilings.compiled_ceiling(str(SCENARIO), COMPILED_USERS, steps, kind.split("-", 1)[1]))
        except ceilings.CompiledCeilingUnavailable as exc:
            queue.put({"unavailable": str(exc)})
    else:
        queue.put(ceilings.numpy_decisions_per_second(str(SCENARIO), score=(kind == "numpy")))


def _measured_cpu() -> int | None:
    """The one CPU every measured process runs on (the last this process may use), or None
    where affinity cannot be set (not Linux): see :func:`_on_one_cpu`."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    return max(os.sched_getaffinity(0))


def _on_one_cpu(cpu: int | None, target, *args) -> None:
    """``target(*args)`` pinned to ``cpu`` (``os.sched_setaffinity``), so that "one core" is
    one core whatever threads a library starts (BLAS in the fit, Arrow writing Parquet), for
    the workloads and the ceilings alike; unpinned when ``cpu`` is None."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    target(*args)


def _in_process(target, *args):
    """Run ``target(*args, queue)`` in a fresh interpreter pinned to one CPU
    (:func:`_on_one_cpu`) and return what it put (a process that dies without putting
    anything raises RuntimeError rather than waiting forever)."""
    import queue as queues

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_on_one_cpu, args=(_measured_cpu(), target, *args, queue))
    proc.start()
    try:
        while True:
            try:
                value = queue.get(timeout=1.0)
                break
            except queues.Empty:
                if not proc.is_alive() and queue.empty():
                    proc.join()
                    raise RuntimeError(f"benchmark process failed with exit code {proc.exitcode}") from None
    finally:
        proc.join()
    if proc.exitcode:
        raise RuntimeError(f"benchmark process failed with exit code {proc.exitcode}")
    return value


# ----------------------------------------------------------------------------- main
def _kernels_backend() -> str:
    try:
        from recsim import kernels
    except ImportError:  # a recsim from before the kernels (an A/B against an older commit)
        return "none"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kernels.backend()


def _machine() -> dict:
    import numpy
    import simpy

    import recsim

    try:
        import numba

        numba_version = numba.__version__
    except ImportError:
        numba_version = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "recsim"], cwd=HERE,
                                    capture_output=True, text=True).stdout.strip())
        commit += "+changes" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "simpy": simpy.__version__,
        "numba": numba_version,
        # the engines' compiled kernels: "numba", or "numpy" (RECSIM_KERNELS=numpy, or no numba)
        "kernels": _kernels_backend(),
        "recsim": getattr(recsim, "__version__", "unknown"),
        "commit": commit,
        "cpus": os.cpu_count(),
        # every workload and ceiling ran pinned to this CPU (None: not pinned, not Linux)
        "measured_on_cpu": _measured_cpu(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": _cpu_model(),
    }


def _cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), to say on which machine figures were measured."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _parse_workload(text: str) -> tuple[str, tuple[str, int, float]]:
    policy, users, days = text.split(":")
    return f"{policy}-{users}u-{days}d", (policy, int(users), float(days))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help=f"run {SETS['quick']}")
    group.add_argument("--full", action="store_true", help="also 1k and 100k users over 7 days")
    parser.add_argument("--only", action="append", choices=sorted(WORKLOADS), help="run these workloads (repeatable)")
    parser.add_argument("--workload", action="append", default=[], metavar="POLICY:USERS:DAYS",
                        help="an extra workload on reference.yaml (repeatable)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per workload; the table shows medians")
    parser.add_argument("--scenario", default=str(SCENARIO), help="the scenario every workload runs")
    parser.add_argument("--no-ceilings", action="store_true", help="skip measuring the ceilings")
    parser.add_argument("--engine", action="append", choices=["batched", "reference"],
                        help="run only these engines (repeatable; default: both)")
    parser.add_argument("--million", action="store_true",
                        help="run benchmarks/million.yaml (1M users x 7 days; about an hour) and nothing else")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="with --million: a scenario override (repeatable), e.g. --set policies=[engagement] "
                             "--set horizon=2d for the learned ranker over two days")
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    args = parser.parse_args(argv)

    if args.million:
        run = _in_process(_million, str(MILLION), tuple(args.overrides))
        run["decisions_per_second"] = round(run["decisions"] / run["wall_seconds"])
        run["target_peak_rss_mib"] = TARGET_MILLION_PEAK_MIB
        run["reached"] = run["peak_rss_mib"] <= TARGET_MILLION_PEAK_MIB
        run["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        run["machine"] = _machine()
        print(json.dumps(run, indent=2))
        if args.out:
            args.out.write_text(json.dumps(run, indent=2) + "\n")
        return run

    names = args.only or SETS["quick" if args.quick else "full" if args.full else "default"]
    if args.workload and not args.only:
        names = []
    workloads = {name: WORKLOADS[name] for name in names}
    workloads.update(_parse_workload(text) for text in args.workload)
    engines = [e for e in _engines() if not args.engine or e in args.engine]
    load_before = os.getloadavg()

    rows = []
    for name, (policy, users, days) in workloads.items():
        for engine in engines:
            spec = {"scenario": args.scenario, "policy": policy, "users": users, "days": days, "engine": engine}
            which = COMPILED_CEILING.get(policy) if not args.no_ceilings else None
            runs = []
            for _ in range(args.repeat):
                runs.append(_in_process(_workload, spec))
                if which:  # the matching compiled ceiling right after the run: its pair
                    got = _in_process(_ceiling, f"compiled-{which}", COMPILED_STEPS)
                    runs[-1]["paired_ceiling"] = got.get("decisions_per_second")
            rates = [r["decisions"] / r["wall_seconds"] for r in runs]
            median = statistics.median(rates)
            best = runs[rates.index(min(rates, key=lambda x: abs(x - median)))]
            row = {
                "workload": name, "engine": engine, "policy": policy, "users": users, "days": days,
                "decisions": best["decisions"], "events": best["events"],
                "wall_seconds": round(statistics.median(r["wall_seconds"] for r in runs), 2),
                "decisions_per_second": round(median),
                "events_per_second": round(statistics.median(r["events"] / r["wall_seconds"] for r in runs)),
                "us_per_decision": round(1e6 / median, 2),
                "peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs), 1),
                "runs": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in runs],
            }
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "runs"}), flush=True)

    ceilings = {}
    if not args.no_ceilings:
        simpy_rates = [_in_process(_ceiling, "simpy", 0) for _ in range(3)]
        ceilings["simpy_timeouts_per_second"] = round(statistics.median(simpy_rates))
        ceilings["numpy_decisions_per_second"] = round(_in_process(_ceiling, "numpy", 0))
        ceilings["numpy_model_decisions_per_second"] = round(_in_process(_ceiling, "numpy-model", 0))
        # the compiled ceilings (numba, one core), each in its own process like the others
        compiled = {}
        for scoring in ("learned", "oracle"):
            got = _in_process(_ceiling, f"compiled-{scoring}", COMPILED_STEPS)
            if "unavailable" in got:
                compiled[scoring] = got
                print(f"compiled {scoring} ceiling unavailable: {got['unavailable']}", flush=True)
                continue
            compiled[scoring] = {k: round(v, 4) if isinstance(v, float) else v for k, v in got.items()}
            ceilings[f"compiled_{scoring}_decisions_per_second"] = round(got["decisions_per_second"])
        ceilings["compiled"] = compiled
        for row in rows:
            for rate in ("decisions_per_second", "events_per_second"):
                row[f"{rate}_vs_simpy"] = round(row[rate] / ceilings["simpy_timeouts_per_second"], 4)
            row["decisions_per_second_vs_numpy"] = round(row["decisions_per_second"] / ceilings["numpy_decisions_per_second"], 4)
            row["decisions_per_second_vs_numpy_model"] = round(
                row["decisions_per_second"] / ceilings["numpy_model_decisions_per_second"], 4)
            # the matching compiled ceiling: None if the policy has none or numba is missing
            which = COMPILED_CEILING.get(row["policy"])
            ceiling = ceilings.get(f"compiled_{which}_decisions_per_second") if which else None
            row["compiled_ceiling"] = which
            row["decisions_per_second_vs_compiled"] = (
                round(row["decisions_per_second"] / ceiling, 4) if ceiling else None)
            paired = paired_ratio(row["runs"])
            if paired is not None:  # the headline: each run against the ceiling measured after it
                row["decisions_per_second_vs_compiled_at_end"] = row["decisions_per_second_vs_compiled"]
                row["decisions_per_second_vs_compiled"] = round(paired, 4)

    # cost growth: per-decision cost relative to the smallest population of the same policy,
    # engine and horizon
    for row in rows:
        peers = [r for r in rows if (r["policy"], r["engine"], r["days"]) == (row["policy"], row["engine"], row["days"])]
        smallest = min(peers, key=lambda r: r["users"])
        row["cost_vs_smallest"] = round(row["us_per_decision"] / smallest["us_per_decision"], 3)
        row["smallest_users"] = smallest["users"]

    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]},
        "scenario": str(Path(args.scenario).resolve().relative_to(HERE.parent))
        if Path(args.scenario).resolve().is_relative_to(HERE.parent) else args.scenario,
        "repeat": args.repeat,
        "engines": engines,
        "not_available": [e for e in ("reference", "batched") if e not in engines],
        "ceilings": ceilings,
        "workloads": rows,
        "targets": _targets(rows),
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(result))
    return result


def paired_ratio(runs: list[dict]) -> float | None:
    """The median over ``runs`` of each run's decisions/s divided by its ``paired_ceiling``
    (the matching compiled ceiling measured right after it); None if a run has none. This
    machine's speed drifts by 20–25 % within minutes, so a ratio of two figures measured
    minutes apart carries that drift; a ratio of neighbours mostly cancels it."""
    ratios = []
    for r in runs:
        ceiling = r.get("paired_ceiling")
        if not ceiling:
            return None
        ratios.append(r["decisions"] / r["wall_seconds"] / ceiling)
    return statistics.median(ratios) if ratios else None


def _targets(rows: list[dict]) -> dict:
    """Each target of the speed issues that the run's workloads measure, and whether it was met."""
    out = {}
    reference = [r for r in rows if r["workload"].startswith("reference-") and r["engine"] == "reference"]
    if reference:
        out["reference_engine_decisions_per_second"] = {
            "target": TARGET_DECISIONS_PER_SECOND,
            "measured": {r["policy"]: r["decisions_per_second"] for r in reference},
            "reached": all(r["decisions_per_second"] >= TARGET_DECISIONS_PER_SECOND for r in reference),
        }
    batched = [r for r in rows if r["workload"] == "reference-engagement" and r["engine"] == "batched"]
    if batched:
        r = batched[0]
        share = r.get("decisions_per_second_vs_numpy")
        out["batched_engine_decisions_per_second"] = {
            "target": f"{TARGET_BATCHED_DECISIONS_PER_SECOND} and {TARGET_BATCHED_SHARE_OF_NUMPY:.0%} of the NumPy ceiling",
            "measured": {"decisions_per_second": r["decisions_per_second"], "share_of_numpy_ceiling": share},
            "reached": r["decisions_per_second"] >= TARGET_BATCHED_DECISIONS_PER_SECOND
            and (share is None or share >= TARGET_BATCHED_SHARE_OF_NUMPY),
        }
    # shares of the compiled ceilings (batched engine, the reference workloads)
    for workload, target in (("reference-engagement", TARGET_SHARE_OF_COMPILED["learned"]),
                             ("reference-oracle", TARGET_SHARE_OF_COMPILED["oracle"])):
        got = [r for r in rows if r["workload"] == workload and r["engine"] == "batched"
               and r.get("decisions_per_second_vs_compiled") is not None]
        if got:
            share = got[0]["decisions_per_second_vs_compiled"]
            out[f"{workload}_share_of_compiled_ceiling"] = {
                "target": target, "measured": share, "reached": share >= target}
    scaling = [r for r in rows if r["users"] >= 100_000 and r["smallest_users"] <= 1_000]
    if scaling:
        out["per_decision_cost_100k_vs_1k"] = {
            "target": TARGET_SCALING,
            "measured": {f"{r['workload']} ({r['engine']})": r["cost_vs_smallest"] for r in scaling},
            "reached": all(r["cost_vs_smallest"] <= TARGET_SCALING for r in scaling),
        }
    return out


def _compiled_line(compiled: dict) -> str:
    """The compiled ceilings of a run, as a sentence of the table's notes."""
    measured = {k: g for k, g in compiled.items() if "unavailable" not in g}
    if not measured:
        reasons = sorted({g["unavailable"] for g in compiled.values()})
        return "Compiled ceilings: " + ("; ".join(reasons) if reasons else "not measured") + "."
    parts = []
    for scoring, what in (("learned", "a learned linear ranker's scoring"), ("oracle", "the engagement oracle's")):
        got = compiled.get(scoring)
        if got is None:
            continue
        if "unavailable" in got:
            parts.append(f"with {what}: unavailable ({got['unavailable']})")
        else:
            parts.append(f"with {what} {round(got['decisions_per_second']):,} decisions/s "
                         f"({got['rows_per_decision']:.1f} event rows a decision)")
    g = next(iter(measured.values()))
    return (f"Compiled ceilings on this machine, one core ({g['users']:,} users × {g['steps']} decisions, "
            f"median of {g['repeat']} runs, numba {g['numba']}): " + "; ".join(parts)
            + ". A workload's ÷ compiled is to the ceiling of its policy's kind (in brackets).")


def table(result: dict) -> str:
    """The result as a Markdown table (what benchmarks/README.md shows)."""
    c = result["ceilings"]
    lines = [
        "| workload | engine | policy | users | days | decisions | wall s | decisions/s | µs/decision "
        "| events/s | peak RSS MiB | ÷ SimPy | ÷ NumPy | ÷ compiled | cost vs smallest |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["workloads"]:
        vs_simpy = f"{r['decisions_per_second_vs_simpy']:.3f}" if c else "–"
        vs_numpy = f"{r['decisions_per_second_vs_numpy']:.3f}" if c else "–"
        compiled = r.get("decisions_per_second_vs_compiled")
        vs_compiled = f"{compiled:.3f} ({r['compiled_ceiling']})" if compiled is not None else "–"
        lines.append(
            f"| {r['workload']} | {r['engine']} | {r['policy']} | {r['users']:,} | {r['days']:g} "
            f"| {r['decisions']:,} | {r['wall_seconds']:,.1f} | {r['decisions_per_second']:,} "
            f"| {r['us_per_decision']:.1f} | {r['events_per_second']:,} | {r['peak_rss_mib']:,.0f} "
            f"| {vs_simpy} | {vs_numpy} | {vs_compiled} | {r['cost_vs_smallest']:.2f} ({r['smallest_users']:,}) |"
        )
    if c:
        lines.append("")
        lines.append(
            f"Ceilings on this machine: bare SimPy {c['simpy_timeouts_per_second']:,} timeouts/s; "
            f"vectorized NumPy {c['numpy_decisions_per_second']:,} decisions/s with oracle scoring of "
            f"the candidates ({c['numpy_model_decisions_per_second']:,} decisions/s without)."
        )
        lines.append(_compiled_line(c.get("compiled", {})))
    for name in result.get("not_available", []):
        lines.append(f"The {name} engine was not measured in this run (--engine).")
    for name, t in result["targets"].items():
        lines.append(f"Target {name}: {t['target']} — measured {t['measured']} — "
                     f"{'reached' if t['reached'] else 'not reached'}.")
    load = result["load_average"]["before"][0]
    if load > 0.5:
        lines.append(f"(load average {load:.2f} when the run started: other processes shared the CPU.)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
