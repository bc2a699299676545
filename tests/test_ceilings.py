"""The compiled ceiling of benchmarks/ceilings.py computes the model's arithmetic.

The numba kernel does one decision's arithmetic per user (candidate draw, a learned linear
ranker's or the engagement oracle's scores, top k, the logit choice, the log-normal watch time,
the hidden-state updates, the event rows). Here it is run for a few users, two decisions each,
beside the same decisions taken through recsim's NumPy functions — ``rng.candidate_rows``, the
learned ranker's serving functions, the engagement oracle's ``OracleView``, the user model's
components — and must give the same candidates, slates and choices, and the same numbers to
1e-12. These tests check correctness, never speed (tiny sizes).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import ndtr as scipy_ndtr
from scipy.special import ndtri as scipy_ndtri

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import ceilings  # noqa: E402 (benchmarks/ is not a package)

SCENARIO = str(ROOT / "benchmarks" / "reference.yaml")
N_USERS = 24
TOL = {"rtol": 1e-12, "atol": 1e-12}

# numba is a dev dependency: these tests run everywhere `make test` runs (no skip); without it
# they fail at this import, saying what is missing
import numba  # noqa: E402, F401


def test_without_numba_the_ceiling_says_so(monkeypatch):
    monkeypatch.setattr(ceilings, "_numba", None)
    with pytest.raises(ceilings.CompiledCeilingUnavailable, match="numba"):
        ceilings.compiled_decisions_per_second(SCENARIO, 10, 1)


def test_uniforms_and_normals_match_recsim_rng():
    from recsim import rng as rngmod

    keys = rngmod.user_keys(rngmod.stream_key(3, 0, "user:watch"), np.arange(5))
    counters = np.arange(40, dtype=np.int64)
    for key in keys:
        expected = rngmod.uniforms(key, counters)
        got = np.array([ceilings._uniform(key, int(c)) for c in counters])
        assert np.array_equal(got, expected)
    # the inverse normal CDF: Cephes' algorithm, as scipy's, over the centre and both tails
    u = np.concatenate([
        rngmod.uniforms(keys[0], np.arange(2000, dtype=np.int64)),
        [1e-300, 1e-100, 1e-20, 1e-15, 1.2e-14, 1e-10, 1e-5, 0.01, 0.1353352832366127, 0.13533528323661273,
         0.5, 0.75, 0.8646647167633873, 0.99, 1 - 1e-10, 1 - 2.0**-52],
    ])
    z = np.array([ceilings.ndtri(x) for x in u])
    np.testing.assert_allclose(z, scipy_ndtri(u), **TOL)
    x = np.linspace(-9.0, 9.0, 3001)
    np.testing.assert_allclose([ceilings.ndtr(v) for v in x], scipy_ndtr(x), rtol=1e-12, atol=1e-300)


# ----------------------------------------------------------------------------- the NumPy path
class NumpyPath:
    """The same decisions through recsim's own NumPy functions, on the world the kernel's
    inputs come from (the same scenario and replication: the same users and items)."""

    def __init__(self, inputs: dict):
        from recsim import rng as rngmod
        from recsim.config import load_scenario
        from recsim.world import build_world

        sc = load_scenario(SCENARIO, [f"population.n_users={N_USERS}"])
        self.world = build_world(sc, 0)
        self.sc = sc
        self.users = np.arange(N_USERS)
        self.keys = {s: rngmod.user_keys(self.world.user_stream_keys[s], self.users) for s in ceilings._STREAMS}
        self.ctr = {s: np.zeros(N_USERS, dtype=np.int64) for s in ceilings._STREAMS}
        self.seen = np.zeros((N_USERS, (self.world.catalog.n_items + 7) // 8), dtype=np.uint8)
        self.n_seen = np.zeros(N_USERS, dtype=np.int64)
        self.clock = np.zeros(N_USERS)
        self.inputs = {name: np.array(inputs[name]) for name in ("profile", "mean_cls", "activity", "w", "item_part")}

    def decide(self, scoring: str) -> dict:
        from recsim import rng as rngmod
        from recsim.arrays import gather_dot
        from recsim.oracle import OracleView
        from recsim.policies.base import top_k_rows
        from recsim.policies.learned import _log_odds
        from recsim.users.formulas import sample_choice
        from recsim.users.state import Draws, ItemView

        world, sc, users = self.world, self.sc, self.users
        model, state, cat = world.model, world.state, world.catalog
        n, k = sc.recommender.n_candidates, sc.recommender.slate_size
        n_avail = np.full(N_USERS, cat.n_available(0.0))
        candidates, count, m = rngmod.candidate_rows(
            self.keys["candidates"], self.ctr["candidates"], n, n_avail, None, self.seen, self.n_seen)
        assert (count == n).all()
        self.ctr["candidates"] += m
        if scoring == "oracle":  # what EngagementOracle ranks by
            view = OracleView(model, state, users, candidates, cat)
            scores = view.click_probability * view.expected_watch_time
        else:  # the learned ranker's serving log-odds (EngagementPolicy._log_odds_blocks)
            i = self.inputs
            rel = gather_dot(cat.topics_obs, candidates, i["profile"])
            age = self.clock[:, None] - cat.upload_time.take(candidates)
            lo = _log_odds(i["w"], i["item_part"].take(candidates), rel, cat.classifier.take(candidates), age,
                           i["mean_cls"][:, None], i["activity"][:, None])
            scores = np.minimum(lo, 30.0)
        slate = top_k_rows(candidates, scores, k)
        view = model.view(state, users)
        terms = model.allure.score(view, ItemView(cat, slate))
        probs = model.choice.probabilities(view, terms)
        draws = Draws(self.keys, self.ctr, users)
        choice = sample_choice(probs, draws.uniform("choice"))
        tau = np.zeros(N_USERS)
        rows = np.flatnonzero(choice >= 0)
        cu = users[rows]
        item = slate[rows, choice[rows]]
        chosen = {name: values[rows, choice[rows]] for name, values in terms.items()}
        items = ItemView(cat, item)
        draws = Draws(self.keys, self.ctr, cu)
        view = model.view(state, cu)
        tau[rows] = model.response.watch_time(view, items, chosen, draws)
        t_watch = self.clock[cu] + model.choice.scan_time + tau[rows]
        value = model.value.value(view, items, chosen, tau[rows])
        state.put(cu, model.transition.consume(view, items, chosen, tau[rows], value, t_watch, draws))
        byte, bit = item >> 3, (1 << (item & 7)).astype(np.uint8)
        self.n_seen[cu] += (self.seen[cu, byte] & bit) == 0
        self.seen[cu, byte] |= bit
        self.clock += model.choice.scan_time
        self.clock[cu] = t_watch
        return {"candidates": candidates, "scores": scores, "slate": slate, "probabilities": probs,
                "choice": choice, "watch_time": tau, "clicks": rows.shape[0], "value": value,
                "allure": chosen["allure"], "item": item, "rows": rows}


@pytest.mark.parametrize("scoring", ["learned", "oracle"])
def test_kernel_decisions_are_the_numpy_paths(scoring):
    inputs = ceilings.compiled_inputs(SCENARIO, N_USERS)
    ref = NumpyPath(inputs)
    state = ref.world.state
    clicks = 0
    for step in range(2):  # the second decision draws around the item watched in the first
        got = ceilings.run_compiled(inputs, 1, scoring, trace=N_USERS)
        want = ref.decide(scoring)
        assert np.array_equal(got["candidates"], want["candidates"]), step
        np.testing.assert_allclose(got["scores"], want["scores"], **TOL)
        assert np.array_equal(got["slate"], want["slate"]), step
        np.testing.assert_allclose(got["probabilities"], want["probabilities"], **TOL)
        assert np.array_equal(got["choice"], want["choice"]), step
        np.testing.assert_allclose(got["watch_time"], want["watch_time"], **TOL)
        for name in ("theta", "appetite", "satisfaction", "habit", "habit_time", "fatigue"):
            np.testing.assert_allclose(inputs[name], state[name], err_msg=name, **TOL)
        assert np.array_equal(inputs["ctr"], np.stack([ref.ctr[s] for s in ceilings._STREAMS]))
        assert np.array_equal(inputs["seen"], ref.seen) and np.array_equal(inputs["n_seen"], ref.n_seen)
        np.testing.assert_allclose(inputs["clock"], ref.clock, **TOL)
        # the event rows: the slate's impressions, then a click and a watch on a click
        k = inputs["k"]
        assert got["rows"] == N_USERS * k + 2 * want["clicks"]
        assert got["clicks"] == want["clicks"]
        clicks += want["clicks"]
        ev_f, ev_i, ev_e = inputs["ev_f"], inputs["ev_i"], inputs["ev_e"]
        start = 0
        for row, u in enumerate(ref.users.tolist()):
            assert (ev_e[start: start + k] == 1).all()
            assert np.array_equal(ev_i[ceilings._ITEM, start: start + k], want["slate"][u])
            assert np.array_equal(ev_i[ceilings._POSITION, start: start + k], np.arange(1, k + 1))
            assert (ev_i[ceilings._USER, start: start + k] == u).all()
            start += k
            if want["choice"][u] >= 0:
                j = int(np.flatnonzero(want["rows"] == u)[0])
                assert list(ev_e[start: start + 2]) == [2, 3]
                assert (ev_i[ceilings._ITEM, start: start + 2] == want["item"][j]).all()
                watch = ev_f[:, start + 1]
                np.testing.assert_allclose(
                    [watch[ceilings._WATCH_TIME], watch[ceilings._TRUE_VALUE], watch[ceilings._TRUE_ALLURE]],
                    [want["watch_time"][u], want["value"][j], want["allure"][j]], **TOL)
                start += 2
        assert start == got["rows"]
    assert clicks > 0  # the watch and update path ran


def test_top_k_ties_go_to_the_candidate_drawn_first():
    """Equal scores: the kernel's slate is top_k_rows' (a stable sort, the first drawn first)."""
    from recsim.policies.base import top_k_rows

    inputs = ceilings.compiled_inputs(SCENARIO, 4)
    inputs["w"][:] = 0.0  # every learned score equal to the intercept: all tied
    inputs["item_part"][:] = -1.0
    got = ceilings.run_compiled(inputs, 1, "learned", trace=4)
    assert np.array_equal(got["slate"], top_k_rows(got["candidates"], got["scores"], inputs["k"]))
    assert np.array_equal(got["slate"], got["candidates"][:, : inputs["k"]])


def test_the_paired_ratio_is_the_median_of_each_runs_ratio_to_its_own_ceiling():
    """benchmarks/run.py's headline ÷ compiled: each run's decisions/s over the ceiling measured
    right after it, the median over runs; None when a run has no paired ceiling (numba
    missing). A known answer: rates 100, 150, 90 against ceilings 200, 250, 300 give ratios
    0.5, 0.6, 0.3 and the median 0.5 (where the ratio of the medians would be 100 / 250)."""
    import run as bench  # benchmarks/run.py (benchmarks/ is on the path above)

    runs = [{"decisions": 1000, "wall_seconds": 10.0, "paired_ceiling": 200.0},
            {"decisions": 1500, "wall_seconds": 10.0, "paired_ceiling": 250.0},
            {"decisions": 900, "wall_seconds": 10.0, "paired_ceiling": 300.0}]
    assert bench.paired_ratio(runs) == pytest.approx(0.5, rel=1e-12)
    assert bench.paired_ratio(runs[:2]) == pytest.approx(0.55, rel=1e-12)
    assert bench.paired_ratio([*runs, {"decisions": 1, "wall_seconds": 1.0, "paired_ceiling": None}]) is None
    assert bench.paired_ratio([]) is None


def _cpus_allowed(queue) -> None:
    """A measured process's target: report the CPUs it may run on."""
    import os

    queue.put(sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None)


def test_measured_processes_run_pinned_to_one_cpu():
    """benchmarks/run.py's "one core": every workload and ceiling process is pinned to one CPU
    (the last this process may use), so threads a library starts share it; where affinity
    cannot be set (not Linux) the process runs unpinned and the JSON says so (None)."""
    import os

    import run as bench  # benchmarks/run.py

    cpu = bench._measured_cpu()
    got = bench._in_process(_cpus_allowed)
    if hasattr(os, "sched_setaffinity"):
        assert cpu == max(os.sched_getaffinity(0)) and got == [cpu]
    else:
        assert cpu is None and got is None
    assert bench._machine()["measured_on_cpu"] == cpu
