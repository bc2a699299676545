"""The oracles' compiled path computes what the NumPy code computes, bit for bit.

The default choice model's P(click) of an item shown alone
(:meth:`recsim.users.default.LogitChoice.click_probability_alone`) by its kernel
(:func:`recsim.kernels.model.click_probability_alone`) against the NumPy code on awkward
inputs; the kernel standing aside when a formula it stands for is replaced; the expected watch
time's kernel across every branch of Φ; oracle blocks of any size; a plug-in choice model
that inherits the built-in shortcut but is held to its contract; and whole runs of the
engagement and click-value oracles with kernels on and off, on both engines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsim import kernels
from recsim.config import BehaviourConfig, load_scenario
from recsim.experiment import make_tasks, run_task
from recsim.kernels import model as compiled
from recsim.users import default, formulas
from recsim.users.model import UserModel, build_user_model
from recsim.users.state import ItemView, StateView, UserState

BASELINE = Path(__file__).resolve().parent.parent / "scenarios" / "baseline.yaml"
_SMALL = ["replications=1", "catalog.n_items=300", "catalog.upload_rate=10/d", "population.n_users=20"]


def _both(function):
    with kernels.use("numba"):
        with_kernels = function()
    with kernels.use("numpy"):
        without = function()
    return with_kernels, without


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts the calls of the compiled click_probability_alone (the component imports it
    from its module on every call)."""
    calls = []
    kernel = compiled.click_probability_alone

    def counted(*args):
        calls.append(args[0].shape)
        return kernel(*args)

    monkeypatch.setattr(compiled, "click_probability_alone", counted)
    return calls


def _allure(rng, B: int, c: int) -> np.ndarray:
    """Allure of every size: ordinary values, huge and tiny magnitudes, signed zeros and
    values that drive the logistic to exactly 0 and 1."""
    special = np.array([0.0, -0.0, 1e-300, -1e-300, 5e-324, 1e300, -1e300, 710.0, -710.0, 40.0, -40.0,
                        np.inf, -np.inf, 3.0, 3.0 + 2**-51])
    A = rng.normal(1.5, 2.0, size=B * c)
    picks = rng.random(B * c) < 0.3
    A[picks] = rng.choice(special, size=int(picks.sum()))
    return A.reshape(B, c)


@pytest.mark.parametrize("B, c", [(300, 40), (1, 1), (257, 1), (1, 200), (0, 5), (4, 0), (0, 0)])
@pytest.mark.parametrize("params", [
    {},
    {"beta": 0.37, "u0": -1.25, "phi_f": 2.5, "position_exponent": 1.3},
    {"beta": 1e-3, "position_exponent": 0.0},
    {"beta": 50.0, "u0": 0.0, "phi_f": 0.0},
])
def test_compiled_click_probability_alone_is_the_numpy_bits(B, c, params, kernel_calls):
    rng = np.random.default_rng(B * 1009 + c + len(params))
    choice = default.LogitChoice(BehaviourConfig().choice.model_copy(update=params))
    A = _allure(rng, B, c)
    for F in (rng.exponential(0.7, B), np.zeros(B), rng.choice([0.0, 1e-300, 1e6, 24.0], B)):
        state = StateView.of({"fatigue": F})
        p1, p0 = _both(lambda state=state: choice.click_probability_alone(state, {"allure": A}))
        assert p1.dtype == p0.dtype == np.float64 and p1.shape == p0.shape == (B, c)
        assert np.array_equal(p1, p0)
    assert len(kernel_calls) == 3  # the kernel ran (with kernels on only)


def test_nan_allure_gives_nan_either_way(kernel_calls):
    choice = default.LogitChoice(BehaviourConfig().choice)
    A = np.array([[np.nan, 1.0, np.inf], [-np.inf, np.nan, 0.0]])
    state = StateView.of({"fatigue": np.array([0.5, np.nan])})
    p1, p0 = _both(lambda: choice.click_probability_alone(state, {"allure": A}))
    assert np.array_equal(p1, p0, equal_nan=True) and np.isnan(p1).sum() == 4
    assert kernel_calls == [(2, 3)]


def test_the_shortcut_is_the_choice_model_on_one_item_slates_with_kernels():
    rng = np.random.default_rng(5)
    choice = default.LogitChoice(BehaviourConfig().choice)
    A = _allure(rng, 64, 17)
    state = StateView.of({"fatigue": rng.exponential(0.5, 64)})
    with kernels.use("numba"):
        shortcut = choice.click_probability_alone(state, {"allure": A})
        slates = choice.probabilities(state.repeat(17), {"allure": A.reshape(-1, 1)})[:, 1].reshape(64, 17)
    assert np.array_equal(shortcut, slates)


def test_inputs_the_kernel_does_not_take_go_through_numpy(kernel_calls):
    """Float32 allure, integer fatigue, or a fatigue of another length: the NumPy code
    decides (and raises what it raises)."""
    choice = default.LogitChoice(BehaviourConfig().choice)
    A = np.linspace(-2, 4, 12).reshape(3, 4)
    with kernels.use("numba"):
        for allure, fatigue in ((A.astype(np.float32), np.zeros(3)), (A, np.zeros(3, dtype=np.int64))):
            got = choice.click_probability_alone(StateView.of({"fatigue": fatigue}), {"allure": allure})
            with kernels.use("numpy"):
                expected = choice.click_probability_alone(StateView.of({"fatigue": fatigue}), {"allure": allure})
            assert np.array_equal(got, expected)
        with pytest.raises(ValueError):
            choice.click_probability_alone(StateView.of({"fatigue": np.zeros(2)}), {"allure": A})
    assert kernel_calls == []


def _replacements():
    def logit(utility, outside, beta):  # a probit instead of the logit
        from scipy.special import ndtr

        z = np.empty((utility.shape[0], utility.shape[1] + 1))
        z[:, 1] = ndtr(beta * (utility[:, 0] - outside))
        z[:, 0] = 1.0 - z[:, 1]
        return z

    return {
        "logit_probabilities": logit,
        "outside_utility": lambda F, u0, phi_f: u0 + 2.0 * phi_f * F,
        "position_term": lambda n, exponent: -exponent * np.log(np.arange(1, n + 1, dtype=float)) - 0.5,
    }


@pytest.mark.parametrize("name", sorted(_replacements()))
def test_a_replaced_formula_turns_the_click_kernel_off(name, monkeypatch, kernel_calls):
    rng = np.random.default_rng(3)
    choice = default.LogitChoice(BehaviourConfig().choice)
    A = rng.normal(1.0, 2.0, (20, 30))
    state = StateView.of({"fatigue": rng.exponential(0.5, 20)})
    with kernels.use("numba"):
        before = choice.click_probability_alone(state, {"allure": A})
    assert len(kernel_calls) == 1
    monkeypatch.setattr(formulas, name, _replacements()[name])
    assert not formulas.as_defined(name)
    with kernels.use("numba"):
        after = choice.click_probability_alone(state, {"allure": A})
    assert len(kernel_calls) == 1  # not called again
    p = choice.params
    l1 = formulas.position_term(1, p.position_exponent)[0]
    expected = formulas.logit_probabilities(A.reshape(-1, 1) + l1,
                                            np.repeat(formulas.outside_utility(state["fatigue"], p.u0, p.phi_f), 30),
                                            p.beta)[:, 1].reshape(20, 30)
    assert np.array_equal(after, expected)  # the replacement's numbers
    assert not np.allclose(after, before)


# ----------------------------------------------------------------------------- expected watch time
@pytest.mark.parametrize("B, c", [(200, 50), (1, 1), (33, 1), (0, 7)])
@pytest.mark.parametrize("sigma", [0.8, 0.0, 1e-3, 3.0])
def test_expected_watch_time_kernel_is_the_numpy_bits_on_every_branch_of_phi(B, c, sigma):
    """Allure from −40 to 40 puts the arguments of both Φ in every branch of Cephes' ndtr
    (|x| < 1, 1 ≤ |x| < √2, the erfc tail, beyond 8·√2 and where it underflows)."""
    from recsim.catalog import generate_catalog, make_topic_centers
    from recsim.config import CatalogConfig

    rng = np.random.default_rng(B + c)
    cfg = CatalogConfig(n_items=300, n_topics=8)
    centers = make_topic_centers(cfg, rng)
    catalog = generate_catalog(cfg, centers, 0.0, 86400.0, rng, np.random.default_rng(1))
    ids = rng.integers(0, catalog.n_items, (B, c))
    A = np.where(rng.random((B, c)) < 0.5, rng.uniform(-40, 40, (B, c)), rng.normal(1.5, 1.5, (B, c)))
    W = rng.choice([0.0, 1.0, 0.5, 0.123], B)
    watch = default.LogNormalWatch(BehaviourConfig().watch.model_copy(update={"sigma": sigma}))
    state = StateView.of({"wellbeing": W})
    w1, w0 = _both(lambda: watch.expected_watch_time(state, ItemView(catalog, ids), {"allure": A}))
    assert w1.shape == w0.shape == (B, c) and np.array_equal(w1, w0)


# ----------------------------------------------------------------------------- oracle blocks
def _oracle_batch(rows: int, c: int, seed: int = 0):
    from recsim.policies.base import OracleBatch
    from recsim.world import build_world

    sc = load_scenario(BASELINE, ["population.n_users=400", "catalog.n_items=500", "catalog.upload_rate=10/d",
                                  "horizon=1d", "warmup=0s", "replications=1"])
    world = build_world(sc, 0)
    rng = np.random.default_rng(seed)
    world.state.arrays["fatigue"][:] = rng.exponential(0.5, world.n_users)
    world.state.arrays["satisfaction"][:] = rng.normal(0, 2, world.n_users)
    users = rng.integers(0, world.n_users, rows).astype(np.int64)
    candidates = rng.integers(0, world.catalog.n_items, (rows, c)).astype(np.int64)

    class Batch:
        def __init__(self):
            self.candidates = candidates
            self.oracle = OracleBatch(world.model, world.state, users, candidates, world.catalog)

        def __len__(self):
            return rows

    return Batch(), world


def test_oracle_scores_do_not_depend_on_the_block_size(monkeypatch):
    from recsim import oracle
    from recsim.policies import builtin

    batch, world = _oracle_batch(150, 60)
    with kernels.use("numba"):
        assert oracle.block_elements(world.model) == oracle.COMPILED_BLOCK
        policies = (builtin.EngagementOracle, builtin.ClickValueOracle, builtin.WellbeingOracle)
        whole = [builtin._block_scores(batch, p._scores) for p in policies]
        monkeypatch.setattr(oracle, "COMPILED_BLOCK", 7 * 60)  # blocks of 7 rows
        blocks = [builtin._block_scores(batch, p._scores) for p in policies]
    with kernels.use("numpy"):
        assert oracle.block_elements(world.model) == oracle.NUMPY_BLOCK
        plain = [builtin._block_scores(batch, p._scores) for p in policies]
    rows = [np.concatenate([p._scores(batch.oracle.block(slice(i, i + 1))) for i in range(len(batch))])
            for p in policies]
    for a, b, c, d in zip(whole, blocks, plain, rows):
        assert np.array_equal(a, b) and np.array_equal(a, c) and np.array_equal(a, d)


def test_a_plug_in_allure_is_scored_in_numpy_sized_blocks():
    from recsim import oracle

    class Mine(default.Allure):
        def score(self, state, items):
            return super().score(state, items)

    model = build_user_model(load_scenario(BASELINE, _SMALL))
    with kernels.use("numba"):
        assert oracle.block_elements(model) == oracle.COMPILED_BLOCK
        model.allure = Mine(model.allure.params)
        assert oracle.block_elements(model) == oracle.NUMPY_BLOCK


# ----------------------------------------------------------------------------- plug-ins
class HalfAllureLogit(default.LogitChoice):
    """A plug-in that inherits the built-in shortcut but chooses on half the allure."""

    def probabilities(self, state, terms):
        return super().probabilities(state, {**terms, "allure": 0.5 * terms["allure"]})


HalfAllureLogit.__module__ = "my_models"


def test_a_guarded_plug_in_choice_model_decides_its_own_click_probability():
    """In an engine the model is guarded (plug-ins held to their contract): a plug-in that
    inherits click_probability_alone from a built-in still has its own probabilities used."""
    model = build_user_model(load_scenario(BASELINE, _SMALL))
    components = dict(model.components, choice=HalfAllureLogit(model.choice.params))
    model = UserModel(components, model.behaviour)
    n = 6
    state = UserState(n, {"fatigue": np.linspace(0, 2, n), "theta": np.zeros((n, 2)),
                          "satisfaction": np.zeros(n)})
    guarded = model.guarded(state)
    assert guarded is not model
    rng = np.random.default_rng(9)
    A = rng.normal(1.0, 1.5, (n, 5))
    view = guarded.view(state, np.arange(n))
    expected = HalfAllureLogit(model.choice.params).probabilities(
        view.repeat(5), {"allure": A.reshape(-1, 1)})[:, 1].reshape(n, 5)
    for backend in ("numba", "numpy"):
        with kernels.use(backend):
            got = guarded.click_probability_alone(guarded.view(state, np.arange(n)), {"allure": A})
            assert np.array_equal(got, expected)
            assert np.array_equal(model.click_probability_alone(view, {"allure": A}), expected)
            builtin_shortcut = default.LogitChoice.click_probability_alone(model.choice, view, {"allure": A})
            assert not np.allclose(got, builtin_shortcut)


# ----------------------------------------------------------------------------- whole runs
_TINY = ["horizon=1d", "warmup=6h", "replications=1", "population.n_users=25", "catalog.n_items=300",
         "catalog.upload_rate=100/d", "recommender.n_candidates=40", "recommender.slate_size=5",
         "outputs.log_impressions=true", "outputs.metrics_interval=12h"]


def _outputs(policy: str, engine: str, backend: str, tmp: Path) -> dict[str, pd.DataFrame]:
    sc = load_scenario(BASELINE, [*_TINY, f"policies=[{policy}]", f"engine={engine}"])
    (task,) = make_tasks(sc, tmp)
    with kernels.use(backend):
        run_task(task)
    return {str(p.relative_to(tmp)): pd.read_parquet(p) for p in sorted(tmp.rglob("*.parquet"))}


@pytest.mark.parametrize("engine", ["batched", "reference"])
@pytest.mark.parametrize("policy", ["engagement_oracle", "click_value_oracle"])
def test_oracle_runs_are_identical_with_and_without_kernels(policy, engine, tmp_path, kernel_calls):
    compiled_run = _outputs(policy, engine, "numba", tmp_path / "numba")
    assert kernel_calls  # the oracle's P(click) came from the kernel
    calls = len(kernel_calls)
    plain_run = _outputs(policy, engine, "numpy", tmp_path / "numpy")
    assert len(kernel_calls) == calls
    assert compiled_run.keys() == plain_run.keys() and len(compiled_run) == 3  # events, metrics, users
    events = next(frame for name, frame in compiled_run.items() if name.startswith("events"))
    assert (events["event"] == "impression").sum() > 100  # every slate served, position by position
    for name in compiled_run:
        pd.testing.assert_frame_equal(compiled_run[name], plain_run[name], check_exact=True, obj=f"{engine} {name}")
