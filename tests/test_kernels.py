"""The compiled kernels (:mod:`recsim.kernels`) compute what the NumPy code computes, bit for bit.

Three levels: the special functions against SciPy and :mod:`recsim.rng` on many inputs; the
default user model's components with kernels on and off on random batches (every shape the
engines pass: ``(B,)`` and ``(B, c)`` ids, one row, one item, σ = 0); and whole runs of the
golden scenarios (``tests/test_engine_golden.py``) on both engines, whose every output file must
be identical with and without kernels. numba is a dependency, so nothing here skips; the
fallback without numba is tested by hiding it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, ndtr, ndtri

from recsim import kernels
from recsim import rng as rngmod
from recsim.config import BehaviourConfig, scenario_from_dict
from recsim.experiment import make_tasks, run_task
from recsim.kernels import model as special
from recsim.users import default
from recsim.users.model import UserModel
from recsim.users.state import ItemView, StateView
from test_engine_golden import CASES, SCENARIOS, _scenario


# ----------------------------------------------------------------------------- special functions
@numba.njit
def _each(function, x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = function(x[i])
    return out


def _arguments(seed: int) -> np.ndarray:
    """Real numbers across every branch of ndtr and expit: the centre, the tails up to where
    they underflow, exact branch points (±1/√2, ±1, ±8·√2) and signed zeros."""
    rng = np.random.default_rng(seed)
    edges = np.array([0.0, -0.0, np.sqrt(0.5), -np.sqrt(0.5), 1.0, -1.0, 8 * np.sqrt(2), -8 * np.sqrt(2),
                      40.0, -40.0, 1e-300, -1e-300, np.inf, -np.inf])
    return np.concatenate([rng.normal(0, 2, 100_000), rng.normal(0, 15, 50_000),
                           np.linspace(-45, 45, 90_001), edges])


def test_ndtr_and_expit_are_scipys_bits():
    x = _arguments(1)
    assert np.array_equal(_each(special.ndtr, x), ndtr(x))
    assert np.array_equal(_each(special.expit, x), expit(x))


def test_ndtri_is_scipys_bits():
    rng = np.random.default_rng(2)
    p = np.concatenate([rng.random(200_000), 10.0 ** -rng.uniform(0, 300, 20_000),
                        1 - 10.0 ** -rng.uniform(0, 16, 20_000), [0.0, 1.0, 0.5, np.exp(-2), 1 - np.exp(-2)]])
    assert np.array_equal(_each(special.ndtri, p), ndtri(p))


def test_counter_uniforms_are_the_streams_numbers():
    ukeys = rngmod.user_keys(12345, np.arange(50))
    counters = np.arange(50, dtype=np.int64) * 7

    @numba.njit
    def draws(keys, counters):
        out = np.empty(keys.shape[0])
        for i in range(keys.shape[0]):
            out[i] = special.uniform(keys[i], counters[i])
        return out

    assert np.array_equal(draws(ukeys, counters), rngmod.uniforms(ukeys, counters))


# ----------------------------------------------------------------------------- user model components
def _catalog_and_state(seed: int, B: int, K: int = 20, n_items: int = 500):
    from recsim.catalog import generate_catalog, make_topic_centers
    from recsim.config import CatalogConfig

    cfg = CatalogConfig(n_items=n_items, n_topics=K)
    rng = np.random.default_rng(seed)
    centers = make_topic_centers(cfg, rng)
    catalog = generate_catalog(cfg, centers, 0.0, 86400.0, rng, np.random.default_rng(seed + 1))
    theta = rng.normal(size=(B, K))
    theta /= np.sqrt((theta * theta).sum(axis=1, keepdims=True))
    state = StateView.of({"theta": theta, "appetite": rng.random(B), "wellbeing": rng.random(B),
                          "fatigue": rng.exponential(0.5, B)})
    return catalog, state, rng


def _both(function):
    with kernels.use("numba"):
        compiled = function()
    with kernels.use("numpy"):
        plain = function()
    return compiled, plain


@pytest.mark.parametrize("B, c", [(300, 40), (1, 1), (1, 200), (257, 1), (64, 10)])
@pytest.mark.parametrize("one_dimensional", [False, True])
def test_allure_and_expected_watch_time_kernels_match_the_formulas(B, c, one_dimensional):
    catalog, state, rng = _catalog_and_state(B * 31 + c, B)
    ids = rng.integers(0, catalog.n_items, size=(B,) if one_dimensional else (B, c))
    behaviour = BehaviourConfig()
    allure = default.Allure(behaviour.allure)

    def compute(watch):
        items = ItemView(catalog, ids)
        terms = allure.score(state, items)
        return terms, watch.expected_watch_time(state, items, terms)

    for watch_cfg in (behaviour.watch, behaviour.watch.model_copy(update={"sigma": 0.0})):
        (t1, w1), (t0, w0) = _both(lambda: compute(default.LogNormalWatch(watch_cfg)))
        assert t1["relevance"].shape == t0["relevance"].shape == ids.shape
        for name in ("relevance", "allure"):
            assert np.array_equal(t1[name], t0[name]), name
        assert w1.shape == w0.shape and np.array_equal(w1, w0)


def test_click_probability_alone_shortcut_is_the_choice_model_on_one_item_slates():
    catalog, state, rng = _catalog_and_state(7, 120)
    behaviour = BehaviourConfig()
    choice = default.LogitChoice(behaviour.choice)
    A = rng.normal(0, 2, (120, 37))
    shortcut = choice.click_probability_alone(state, {"allure": A})
    single = choice.probabilities(state.repeat(37), {"allure": A.reshape(-1, 1)})[:, 1].reshape(120, 37)
    assert np.array_equal(shortcut, single)


def test_a_component_of_ones_own_skips_the_kernel_and_the_shortcut(monkeypatch):
    """A subclass from outside recsim is run as written: its overrides are honoured."""
    calls = []

    class Mine(default.LogitChoice):
        def probabilities(self, state, terms):
            calls.append(terms["allure"].shape)
            return super().probabilities(state, terms)

    Mine.__module__ = "my_models"
    model = UserModel.__new__(UserModel)
    model.choice = Mine(BehaviourConfig().choice)
    catalog, state, rng = _catalog_and_state(3, 5)
    model.click_probability_alone(state, {"allure": rng.normal(size=(5, 4))})
    assert calls == [(20, 1)]


# ----------------------------------------------------------------------------- whole runs
def _outputs(case: str, tmp: Path, backend: str, engine: str) -> dict[str, pd.DataFrame]:
    overrides, index = CASES[case]
    data = _scenario(overrides)
    data["engine"] = engine
    sc = scenario_from_dict(data)
    task = next(t for t in make_tasks(sc, tmp) if t.policy_index == index)
    with kernels.use(backend):
        run_task(task)
    return {str(p.relative_to(tmp)): pd.read_parquet(p) for p in sorted(tmp.rglob("*.parquet"))}


# the golden cases whose policies and user models have kernels or shortcuts on their path:
# the oracles (allure, expected watch time, P(click) alone), the learned ranker, a crowded
# candidate pool, the cascade, and a user model of one's own beside the built-in components
KERNEL_CASES = ["a-2", "a-3", "a-6", "b-engagement", "c-cascade-patience", "c-own"]


@pytest.mark.parametrize("case", KERNEL_CASES)
def test_runs_are_identical_with_and_without_kernels(case, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(SCENARIOS))
    compiled = _outputs(case, tmp_path / "numba", "numba", "batched")
    plain = _outputs(case, tmp_path / "numpy", "numpy", "batched")
    reference = _outputs(case, tmp_path / "reference", "numba", "reference")
    assert compiled.keys() == plain.keys() == reference.keys() and compiled
    for name in compiled:
        pd.testing.assert_frame_equal(compiled[name], plain[name], check_exact=True, obj=f"{case} {name}")
        pd.testing.assert_frame_equal(reference[name], plain[name], check_exact=True, obj=f"{case} {name}")


# ----------------------------------------------------------------------------- switching
def test_without_numba_the_numpy_code_runs_with_one_warning(monkeypatch):
    monkeypatch.setattr(kernels, "_numba", None)
    monkeypatch.setattr(kernels, "_loaded", True)
    monkeypatch.setattr(kernels, "_IMPORT_ERROR", "ModuleNotFoundError: No module named 'numba'")
    monkeypatch.setattr(kernels, "_warned", False)
    monkeypatch.delenv(kernels._WARNED, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not kernels.enabled()
        assert not kernels.enabled()
        assert kernels.backend() == "numpy"
    messages = [str(w.message) for w in caught if issubclass(w.category, kernels.KernelWarning)]
    assert len(messages) == 1 and "numba is not importable" in messages[0] and "RECSIM_KERNELS" in messages[0]
    # a worker process started afterwards inherits that it was shown, and stays quiet
    import os

    assert os.environ.get(kernels._WARNED) == "1"
    monkeypatch.setattr(kernels, "_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not kernels.enabled()
    assert not [w for w in caught if issubclass(w.category, kernels.KernelWarning)]


def test_use_switches_and_restores_and_refuses_unknown_backends():
    assert kernels.enabled()
    with kernels.use("numpy"):
        assert kernels.backend() == "numpy"
    assert kernels.backend() == "numba"
    with pytest.raises(ValueError, match="numba, numpy"):
        with kernels.use("cuda"):
            pass


def test_a_formula_replaced_at_run_time_turns_its_kernel_off(monkeypatch):
    """A kernel stands for named formulas; once one is replaced (a mutation test, a reader's
    variant) the component computes with the replacement, not with the kernel's copy."""
    from recsim.users import formulas

    catalog, state, rng = _catalog_and_state(11, 20)
    ids = rng.integers(0, catalog.n_items, size=(20, 30))
    allure = default.Allure(BehaviourConfig().allure)
    with kernels.use("numba"):
        before = allure.score(state, ItemView(catalog, ids))["allure"]
        monkeypatch.setattr(formulas, "grip", lambda e, a, delta, omega: np.zeros(np.broadcast(e, a).shape))
        assert not formulas.as_defined("grip") and formulas.as_defined("relevance")
        after = allure.score(state, ItemView(catalog, ids))["allure"]
    p = BehaviourConfig().allure
    r = allure.score(state, ItemView(catalog, ids))["relevance"]
    assert np.array_equal(after, p.w_r * r + p.w_c * catalog.clickbait[ids])
    assert not np.array_equal(before, after)


@pytest.mark.parametrize("users", [np.arange(50, dtype=np.int64), np.array([3, 7, 3, 0, 49], dtype=np.int64),
                                   np.array([], dtype=np.int64), np.array([12], dtype=np.int64)])
def test_draws_by_the_kernel_are_the_streams_numbers_and_advance_the_same_counters(users):
    from recsim.users.state import Draws

    def draw(backend):
        draws = Draws.for_users(99, ("watch", "satisfaction"), users, n_users=50)
        for stream in ("watch", "satisfaction"):
            draws.counters[stream][:] = np.arange(50) % 7
        with kernels.use(backend):
            got = [draws.uniform("watch"), draws.normal("satisfaction"), draws.uniform("watch", users < 10),
                   draws.normal("watch")]
        return got, {s: c.copy() for s, c in draws.counters.items()}

    (compiled, counters_c), (plain, counters_p) = draw("numba"), draw("numpy")
    for a, b in zip(compiled, plain):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    for stream in counters_p:
        assert np.array_equal(counters_c[stream], counters_p[stream])


# ----------------------------------------------------------------------------- returns (thinning)
def _return_states(seed: int, B: int):
    """Rows of the returns' state across what runs reach: kernels just fed or long decayed,
    satisfaction far below and above 0, some rows with no kernel at all, times before and
    after t = 0 (a warm-up) and the last session's end just before now."""
    rng = np.random.default_rng(seed)
    t_end = rng.uniform(-2e5, 6e5, B)
    state = {"kernel_time": t_end, "satisfaction": rng.normal(0.0, 4.0, B),
             "impulse": rng.exponential(3e-4, B) * (rng.random(B) < 0.6),
             "slow": rng.exponential(3e-6, B) * (rng.random(B) < 0.8)}
    now = t_end + rng.exponential(600.0, B)
    return state, now


def _next_returns(backend, state, now, until, users, n_users, returns=None):
    from recsim.users.state import Draws

    returns = returns or default.HawkesReturns(BehaviourConfig().returns).bind(BehaviourConfig())
    draws = Draws.for_users(5, ("returns",), users, n_users)
    draws.counters["returns"][:] = np.arange(n_users) % 5
    with kernels.use(backend):
        got = returns.next_return(state, now, until, draws)
    return got, draws.counters["returns"].copy()


@pytest.mark.parametrize("B, until", [(4000, 7 * 86400.0), (1, 7 * 86400.0), (300, 3600.0), (50, np.inf),
                                      (0, 86400.0)])
def test_the_returns_kernel_is_thinning_bit_for_bit(B, until, monkeypatch):
    """HawkesReturns.next_return by the compiled kernel gives the NumPy thinning's times and
    leaves the same counters (the same draws taken), and it is the kernel that ran."""
    calls = []
    kernel = special.hawkes_next_returns
    monkeypatch.setattr(special, "hawkes_next_returns", lambda *a: calls.append(a[2].shape) or kernel(*a))
    state, now = _return_states(B + 1, B)
    users = np.random.default_rng(B).permutation(2 * B + 3)[:B].astype(np.int64)
    (compiled, ctr_c), (plain, ctr_p) = (_next_returns(b, state, now, until, users, 2 * B + 3)
                                         for b in ("numba", "numpy"))
    assert calls == [(B,)]
    assert compiled.dtype == plain.dtype and np.array_equal(compiled, plain)
    assert np.array_equal(ctr_c, ctr_p)
    if B > 100:  # the case is not degenerate: some rows return by ``until``, some do not
        assert np.isinf(plain).any() and np.isfinite(plain).any()
        assert (ctr_p - np.arange(2 * B + 3) % 5).max() > 4  # rows with several rejected points


def test_the_returns_kernel_steps_aside_for_repeated_users_and_replaced_formulas(monkeypatch):
    """A user twice in a batch draws at once in NumPy (both rows read one counter), one after
    the other in a loop: the kernel does not run then. Nor once a formula it stands for is
    replaced; the replacement is what computes."""
    from recsim.users import formulas

    calls = []
    kernel = special.hawkes_next_returns
    monkeypatch.setattr(special, "hawkes_next_returns", lambda *a: calls.append(1) or kernel(*a))
    state, now = _return_states(3, 6)
    users = np.array([4, 1, 4, 0, 2, 3], dtype=np.int64)
    (compiled, ctr_c), (plain, ctr_p) = (_next_returns(b, state, now, 86400.0 * 7, users, 5)
                                         for b in ("numba", "numpy"))
    assert calls == [] and np.array_equal(compiled, plain) and np.array_equal(ctr_c, ctr_p)
    state, now = _return_states(4, 200)
    users = np.arange(200, dtype=np.int64)
    monkeypatch.setattr(formulas, "daily_cycle", lambda t, amplitude, peak: np.ones_like(np.asarray(t, float)))
    flat, _ = _next_returns("numba", state, now, 86400.0 * 7, users, 200)
    assert calls == []
    monkeypatch.undo()
    cycled, _ = _next_returns("numba", state, now, 86400.0 * 7, users, 200)
    assert not np.array_equal(flat, cycled)


def test_no_kernel_calls_a_kernel_of_another_file():
    """numba's disk cache checks only the file a function is defined in; a kernel compiled
    against another kernel file's function would keep a stale copy after that file changes.
    So a kernel file imports from its package only ``jit`` (and may import plain constants
    from outside the package)."""
    import ast

    folder = Path(kernels.__file__).parent
    for path in sorted(folder.glob("*.py")):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [alias.name for alias in node.names]
                assert node.module is None and names == ["jit"], f"{path.name} imports {node.module} {names}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("recsim.kernels"):
                raise AssertionError(f"{path.name} imports {node.module}")


def test_a_bad_recsim_kernels_value_is_refused(monkeypatch):
    monkeypatch.setenv("RECSIM_KERNELS", "off")
    monkeypatch.setattr(kernels, "_requested", None)
    with pytest.raises(kernels.KernelConfigError, match="RECSIM_KERNELS is 'off'; expected one of: numba, numpy"):
        kernels.enabled()
    monkeypatch.setattr(kernels, "_requested", None)  # the next test reads the environment afresh
    monkeypatch.setenv("RECSIM_KERNELS", "NumPy ")
    assert kernels.backend() == "numpy"
    monkeypatch.setattr(kernels, "_requested", None)


def test_the_cli_exits_2_on_a_bad_recsim_kernels_value():
    import subprocess
    import sys

    env = {**__import__("os").environ, "RECSIM_KERNELS": "off"}
    done = subprocess.run([sys.executable, "-m", "recsim", "validate", str(SCENARIOS / "baseline.yaml")],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2, done.stderr
    assert "RECSIM_KERNELS is 'off'" in done.stderr and "Traceback" not in done.stderr


def test_use_reaches_worker_processes_through_the_environment():
    """A process started inside ``kernels.use("numpy")`` runs the NumPy code, one started
    after it the kernels."""
    import subprocess
    import sys

    probe = [sys.executable, "-c", "from recsim import kernels; print(kernels.backend())"]
    with kernels.use("numpy"):
        inside = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
    after = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
    assert (inside, after) == ("numpy", "numba")
