"""Golden outputs of the reference engine: speed work must not change a single bit.

Each case runs one tiny scenario × policy through :func:`recsim.experiment.run_task` and
compares a SHA-256 of its tables — the event log (rows sorted), the metrics and the users table
— with a digest recorded from the engine before its hot path was optimized. Together the cases
cover warm-up, churn, surveys, uploads, retrains, breaks, impressions on and off, a learned
policy (``engagement``), the oracles and user code (whose slates the engine checks).

The digests are bit-exact, so they hold on the platform they were recorded on (NumPy's SIMD
``exp``/``log`` and the BLAS may round differently elsewhere). A canary digest of those
primitives detects another floating-point platform, where the test skips rather than fails.
If a change alters results *on purpose* (a model change), re-record with
``python tests/test_engine_golden.py`` and say so in the change.
"""

from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy.special import expit, ndtr

from recsim.config import scenario_from_dict
from recsim.experiment import make_tasks, partition, run_task

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"

_BASE = {
    "seed": 11,
    "engine": "reference",  # the semantics; tests/test_engine_equivalence.py holds the batched engine to them
    "horizon": "2d",
    "warmup": "1d",
    "replications": 1,
    "workers": 1,
    "population": {"n_users": 30},
    "catalog": {"n_items": 300, "upload_rate": "150/d"},
    "recommender": {"slate_size": 6, "n_candidates": 40, "retrain_interval": "12h"},
    "outputs": {"metrics_interval": "12h"},
    "behaviour": {
        "survey": {"probability": 0.3},
        # more churn than the default, so that churn events occur in a tiny run
        "churn": {"zeta0": -2.5},
    },
}

_POLICIES_A = [
    "random",
    "popularity",
    "engagement_oracle",
    {"name": "engagement", "type": "engagement", "params": {"min_clicks": 5}},
    {"name": "breaks", "type": "break_suggesting",
     "params": {"budget": "10m", "base": {"type": "chronological"}}},
    {"name": "mine", "type": "my_policies:RelevantAndMild"},
]

CASES = {
    # name: (scenario overrides, policy index)
    **{f"a-{i}": ({"policies": _POLICIES_A}, i) for i in range(len(_POLICIES_A))},
    # no warm-up, no impression rows, a crowded candidate pool (repeats in the draws), daily buckets
    "b-chronological": ({
        "seed": 5, "warmup": "0s", "horizon": "3d",
        "catalog": {"n_items": 60, "upload_rate": "40/d"},
        "recommender": {"slate_size": 10, "n_candidates": 50, "retrain_interval": "1d"},
        "outputs": {"log_impressions": False, "metrics_interval": "1d"},
        "policies": ["chronological", {"name": "engagement", "type": "engagement", "params": {"min_clicks": 5}}],
    }, 0),
    "b-engagement": ({
        "seed": 5, "warmup": "0s", "horizon": "3d",
        "catalog": {"n_items": 60, "upload_rate": "40/d"},
        "recommender": {"slate_size": 10, "n_candidates": 50, "retrain_interval": "1d"},
        "outputs": {"log_impressions": False, "metrics_interval": "1d"},
        "policies": ["chronological", {"name": "engagement", "type": "engagement", "params": {"min_clicks": 5}}],
    }, 1),
}

#: Re-recorded when the batched engine came (outputs changed on purpose: a policy draws from a
#: stream per request, learned rankers break ties by draw order instead of 1e-9 noise, and
#: relevance and scores are summed without BLAS, so that both engines get the same bits).
GOLDEN = {
    "a-0": "70e8ed56c709e443f6c4f077cc49f3ec533c922a5de064d3a7c876e8cd5a389c",
    "a-1": "94ebc7b50eca38cb30a21ff9c5241dd015ad782964d5240fc6c5dca320e65411",
    "a-2": "5b33721b99a4e0052d439eaec288ad9c10a1e9834f22aee6481ae8e1ad6b4f8d",
    "a-3": "578e4938f4c628e2b104ad5aa9c4938980a7cc9658c1d2316b2d40a0af82c5a5",
    "a-4": "0c7152780be07d49e6b426ffc1ae2dcbe4e01a233597045c3e093e014c4949c8",
    "a-5": "951186da74e04e60a87c682004b9ab0b0225489fc5f54d84c51919b04ce9ac3d",
    "b-chronological": "4337adb10640babba15dd9116865f48673474e92fedce203d723d1b6fec0236f",
    "b-engagement": "d940f8e8b9a9bdc5ecc73b7420a3f3f84a86890487a95406db7e4b6756b6ab6c",
}

#: Digest of the floating-point primitives the engine relies on, on the recording platform.
CANARY = "7c8549055379ef8ea267fdda93c69e8a57f3559e880390e3358ca69020cd5c49"

EVENT_COLUMNS = [
    "time", "user_id", "session", "event", "item_id", "position", "watch_time", "watch_fraction",
    "survey_score", "true_value", "true_extremeness", "true_allure", "oracle",
]
METRIC_COLUMNS = ["metric", "kind", "start", "end", "value", "oracle"]
USER_COLUMNS = [
    "user_id", "home_cluster", "vulnerable", "susceptibility", "appetite0", "oracle", "stage",
    "appetite", "wellbeing", "satisfaction", "habit", "topic_drift", "churned", "watch_minutes",
    "sessions", "value", "consumed_extremeness",
]


def _scenario(overrides: dict) -> dict:
    data = {**_BASE, "name": "golden"}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def _feed(h: "hashlib._Hash", frame: pd.DataFrame, columns: list[str]) -> None:
    h.update(repr((len(frame), columns)).encode())
    for name in columns:
        values = frame[name].to_numpy()
        if values.dtype.kind == "f":
            values = np.where(np.isnan(values), np.nan, values)  # one NaN bit pattern
            h.update(np.ascontiguousarray(values, dtype="<f8").tobytes())
        elif values.dtype.kind in "iub":
            h.update(np.ascontiguousarray(values, dtype="<i8").tobytes())
        else:
            h.update("\x1f".join(map(str, values)).encode())


def digest(case: str, tmp_path: Path) -> str:
    """SHA-256 of one case's event log (sorted rows), metrics and users tables."""
    overrides, index = CASES[case]
    sc = scenario_from_dict(_scenario(overrides))
    task = next(t for t in make_tasks(sc, tmp_path) if t.policy_index == index)
    result = run_task(task)
    name = sc.policies[index].name
    events = pq.read_table(partition(tmp_path, "events", name, 0)).to_pandas()
    events["event"] = events["event"].astype(str)
    events = events.sort_values(
        ["time", "user_id", "session", "event", "position", "item_id"], kind="stable"
    ).reset_index(drop=True)
    metrics = pd.read_parquet(partition(tmp_path, "metrics", name, 0))
    users = pd.read_parquet(partition(tmp_path, "users", name, 0))
    h = hashlib.sha256()
    _feed(h, events, EVENT_COLUMNS)
    _feed(h, metrics, METRIC_COLUMNS)
    _feed(h, users, USER_COLUMNS)
    headline = sorted((k, v if not math.isnan(v) else "nan") for k, v in result.headline.items())
    h.update(repr((result.n_decisions, result.n_events, result.retrain_times, headline)).encode())
    return h.hexdigest()


def canary() -> str:
    """Digest of NumPy/SciPy/BLAS/libm results the engine's arithmetic depends on."""
    g = np.random.default_rng(0)
    x = g.normal(size=(203, 20))
    v = g.normal(size=20)
    parts = [
        np.exp(x[:, 0]), np.log(np.abs(x[:, 1]) + 0.1), np.log1p(np.abs(x[:, 2])), x @ v,
        x[:7] @ v, np.linalg.norm(x, axis=1), np.linalg.norm(v), expit(x[:, 3]), ndtr(x[:, 4]),
        np.linalg.solve(x[:20].T @ x[:20] + np.eye(20), v), x.T @ x,
        np.array([math.exp(t) for t in x[:, 5]]), np.array([NormalDist().inv_cdf(1 / (i + 2)) for i in range(50)]),
    ]
    h = hashlib.sha256()
    for p in parts:
        h.update(np.ascontiguousarray(p, dtype="<f8").tobytes())
    return h.hexdigest()


@pytest.fixture
def user_code_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(SCENARIOS))


@pytest.mark.parametrize("case", sorted(CASES))
def test_engine_output_is_bit_identical_to_golden(case, tmp_path, user_code_on_path):
    if canary() != CANARY:
        pytest.skip("another floating-point platform than the one the digests were recorded on")
    assert digest(case, tmp_path) == GOLDEN[case]


# ----------------------------------------------------------------------------- fast paths
# The hot path computes some quantities differently from the plain formulas (fused, in place,
# scalar instead of array). These checks hold them to the plain formulas bit for bit on any
# platform, including where the digests above are skipped.


def test_candidate_indices_equal_scaled_uniforms():
    from recsim import rng as R

    keys = {name: R.stream_key(3, 0, f"user:{name}") for name in R.USER_STREAMS}
    g = np.random.default_rng(0)
    for user in range(40):
        fast, plain = R.UserDraws(keys, user), R.UserDraws(keys, user)
        size = int(g.integers(1, 10**6))
        for _ in range(30):
            n, ahead = int(g.integers(1, 300)), int(g.choice([0, 50, 2000]))
            if g.random() < 0.2:
                size = int(g.integers(1, 10**6))
            expected = (plain.block("candidates", n) * size).astype(np.int64)
            np.testing.assert_array_equal(fast.indices("candidates", n, size, ahead), expected)
            if g.random() < 0.1:
                fast.release()
        assert fast.counters == plain.counters
        assert fast.normal("watch") == NormalDist().inv_cdf(plain.uniform("watch"))


def test_model_fast_paths_equal_plain_formulas():
    from recsim.config import BehaviourConfig
    from recsim.users import model

    b = BehaviourConfig()
    g = np.random.default_rng(1)
    for _ in range(300):
        n = int(g.integers(1, 40))
        e, r, cb = g.beta(1.2, 6, n), g.normal(0.3, 0.3, n), g.beta(2, 5, n)
        a, F, W = float(g.beta(3, 11)), float(g.exponential(0.3)), float(g.random())
        d = e - a - b.allure.delta
        g_plain = np.exp(-(d * d) / (2.0 * b.allure.omega * b.allure.omega))
        A_plain = b.allure.w_r * r + b.allure.w_e * g_plain + b.allure.w_c * cb
        np.testing.assert_array_equal(model.grip(e, a, b.allure), g_plain)
        A = model.allure(r, e, cb, a, b.allure)
        np.testing.assert_array_equal(A, A_plain)
        u = np.empty(n + 1)
        u[0] = model.outside_utility(F, b.choice)
        u[1:] = A + model.position_term(n, b.choice)
        z = b.choice.beta * u
        z -= z.max()
        p_plain = np.exp(z) / np.exp(z).sum()
        p = model.choice_probabilities(A, F, b.choice)
        np.testing.assert_array_equal(p, p_plain)
        for x in g.random(5):
            index = int(np.searchsorted(np.cumsum(p_plain), x, side="right"))
            assert model.sample_choice(p, float(x)) == min(index, n) - 1
        L = np.clip(np.exp(np.log(240) + 0.7 * g.standard_normal(n)), 15, 10800)
        m = np.log(L) + b.watch.mu + b.watch.alpha_a * A + b.watch.alpha_w * (W - 0.5)
        s = b.watch.sigma
        ewt_plain = np.exp(m + 0.5 * s * s) * ndtr((np.log(L) - m - s * s) / s) + L * ndtr((m - np.log(L)) / s)
        np.testing.assert_array_equal(model.expected_watch_time(L, A, W, b.watch), ewt_plain)
        np.testing.assert_array_equal(model.expected_watch_time(L, A, W, b.watch, np.log(L)), ewt_plain)
        A_i, psi, frac, s_u = float(A[0]), float(g.exponential(3)), float(g.random()), float(g.lognormal(0, 0.4))
        c = b.continuation
        assert model.continue_probability(A_i, psi, F, c) == expit(c.c0 + c.c_a * A_i + c.c_psi * psi - c.c_f * F)
        ap = b.appetite
        for e_i in (float(e[0]), a):
            plain = np.clip(a + ap.eta_up * s_u * frac * np.maximum(e_i - a, 0.0) - ap.eta_down * np.maximum(a - e_i, 0.0), 0, 1)
            assert model.update_appetite(a, e_i, frac, s_u, ap) == plain
        theta, x, theta0 = (v / np.linalg.norm(v) for v in g.normal(size=(3, 20)))
        new = theta + b.topic.eta * s_u * float(r[0]) * frac * x
        norm = np.linalg.norm(new, axis=-1, keepdims=True)
        np.testing.assert_array_equal(model.update_topic(theta, x, float(r[0]), frac, s_u, b.topic), new / norm)
        dt = float(g.exponential(86400))
        new = theta0 + (theta - theta0) * np.exp(-np.asarray(dt) / b.topic.relax)
        np.testing.assert_array_equal(model.relax_topic(theta, theta0, dt, b.topic.relax),
                                      new / np.linalg.norm(new, axis=-1, keepdims=True))


def test_topic_mix_and_running_sums_equal_sequential_sums():
    """The metrics collector sums a bucket's watches when it closes; the figures equal the
    running sums (+= per watch) they replace."""
    from recsim.metrics import MetricsCollector

    g = np.random.default_rng(2)
    topics = np.maximum(g.normal(size=(50, 6)), 0.0)
    m = MetricsCollector(8, 6, 0.4, topics)
    watches = [(int(g.integers(8)), float(g.exponential(200)), float(g.normal()), float(g.random()), int(g.integers(50)))
               for _ in range(400)]
    for i, (user, *rest) in enumerate(watches):  # ending one second apart, in list order
        m.on_watch_item(user, float(i), *rest)
    m.close_bucket(0.0, 86400.0)
    total, regret, ext, mixes, user_watch = 0.0, 0.0, 0.0, {}, [0.0] * 8
    for user, tau, value, e, item in watches:
        total += tau
        regret += tau if value < 0 else 0.0
        ext += tau * e
        user_watch[user] += tau
        if user in mixes:
            mixes[user] += tau * topics[item]
        else:
            mixes[user] = tau * topics[item]
    rows = {name: value for name, _, _, _, value in m.rows}
    assert rows["watch_minutes_per_user_day"] == total / 60.0 / 8
    assert rows["regret_minutes_per_user_day"] == regret / 60.0 / 8
    assert rows["consumed_extremeness"] == ext / total
    mix = np.array(list(mixes.values()))
    p = mix / mix.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = float((-np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)).mean())
    assert rows["topic_entropy"] == entropy
    np.testing.assert_array_equal(m.user_watch, np.array(user_watch))


if __name__ == "__main__":  # re-record: python tests/test_engine_golden.py
    import tempfile

    sys.path.insert(0, str(SCENARIOS))
    print(f'CANARY = "{canary()}"')
    print("GOLDEN = {")
    for case in sorted(CASES):
        with tempfile.TemporaryDirectory() as tmp:
            print(f'    "{case}": "{digest(case, Path(tmp))}",')
    print("}")
