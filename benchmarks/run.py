"""Benchmark the simulator: decisions/s, events/s, wall time and peak memory.

    python benchmarks/run.py                     # reference.yaml at 1k users (a few minutes)
    python benchmarks/run.py --users 10000       # the full reference workload
    python benchmarks/run.py --users 1000 --users 10000 --out result.json

A decision is one slate served and answered. Each workload runs in its own process (so peak
RSS is its own) on one core. The same run also measures a ceiling: bare SimPy timeouts/s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import resource
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _workload(scenario_path: str, users: int, queue) -> None:
    from recsim.config import load_scenario
    from recsim.experiment import make_tasks, run_task

    sc = load_scenario(scenario_path, [f"population.n_users={users}"])
    with tempfile.TemporaryDirectory() as tmp:
        task = make_tasks(sc, Path(tmp))[0]
        start = time.perf_counter()
        result = run_task(task)
        wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put(
        {
            "workload": Path(scenario_path).stem,
            "engine": sc.engine,
            "policy": sc.policies[0].type,
            "users": users,
            "days": sc.horizon / 86400,
            "wall_seconds": round(wall, 2),
            "decisions": result.n_decisions,
            "events": result.n_events,
            "decisions_per_second": round(result.n_decisions / wall),
            "events_per_second": round(result.n_events / wall),
            "peak_rss_mib": round(peak_kib / 1024, 1),
        }
    )


def _simpy_ceiling(n_processes: int = 1000, n_timeouts: int = 300_000) -> float:
    import simpy

    env = simpy.Environment()
    per = n_timeouts // n_processes

    def proc(env):
        for _ in range(per):
            yield env.timeout(1.0)

    for _ in range(n_processes):
        env.process(proc(env))
    start = time.perf_counter()
    env.run()
    return n_processes * per / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default=str(HERE / "reference.yaml"))
    parser.add_argument("--users", type=int, action="append", help="population sizes (repeatable)")
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    args = parser.parse_args()
    sizes = args.users or [1000]

    ctx = multiprocessing.get_context("spawn")
    rows = []
    for users in sizes:
        queue = ctx.Queue()
        proc = ctx.Process(target=_workload, args=(args.scenario, users, queue))
        proc.start()
        rows.append(queue.get())
        proc.join()
        print(json.dumps(rows[-1]), flush=True)
    ceiling = _simpy_ceiling()
    for row in rows:
        row["ratio_to_simpy_timeouts"] = round(row["decisions_per_second"] / ceiling, 4)
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": multiprocessing.cpu_count(), "platform": platform.platform()},
        "ceilings": {"simpy_timeouts_per_second": round(ceiling)},
        "workloads": rows,
    }
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print()
    print(f"{'workload':16} {'users':>7} {'wall s':>8} {'decisions/s':>12} {'events/s':>10} {'peak MiB':>9}")
    for r in rows:
        print(f"{r['workload']:16} {r['users']:>7} {r['wall_seconds']:>8} {r['decisions_per_second']:>12} "
              f"{r['events_per_second']:>10} {r['peak_rss_mib']:>9}")
    print(f"ceiling: bare SimPy {ceiling:,.0f} timeouts/s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
