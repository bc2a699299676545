"""Extremeness and appetite tied to topic clusters (docs/model.md §2 and §4):
``catalog.extremeness_by_cluster`` and ``population.appetite_by_cluster``.

Unset, the catalog and the users are the draws they were before the option existed (checked
against the draw order written out independently here and against figures recorded from the
code before the option); set, a named cluster's items (users) take their extremeness (a₀) from
its own distribution and nothing else changes; bad keys are one clear scenario error; a
scenario using it runs the same in both engines.
"""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from recsim.catalog import (
    ItemDraws,
    generate_catalog,
    item_attributes,
    make_topic_centers,
    unit_rows,
)
from recsim.config import (
    CatalogConfig,
    PopulationConfig,
    ScenarioError,
    apply_overrides,
    scenario_from_dict,
)
from recsim.engine.batched import simulate_batched
from recsim.engine.reference import simulate
from recsim.eventlog import EventLog
from recsim.users.default import PopulationSampler
from recsim.world import build_world

ROOT = Path(__file__).resolve().parent.parent
DAY = 86400.0
START, END = -DAY, DAY  # the backlog before START, uploads over [START, END)


def _catalog(cfg: CatalogConfig, seeds=(101, 102, 103)):
    topics, catalog, uploads = (np.random.default_rng(s) for s in seeds)
    centers = make_topic_centers(cfg, topics)
    return centers, generate_catalog(cfg, centers, START, END, catalog, uploads)


def _users(p: PopulationConfig, centers: np.ndarray, n: int, seed: int = 104) -> dict[str, np.ndarray]:
    return PopulationSampler(p).sample(n, centers, np.random.default_rng(seed))


def _columns(catalog) -> dict[str, np.ndarray]:
    out = {f.name: getattr(catalog, f.name) for f in fields(catalog) if f.name != "draws"}
    out.update({f"draws.{f.name}": getattr(catalog.draws, f.name) for f in fields(ItemDraws)})
    return out


# ----------------------------------------------------------------------------- unset
def _items_as_documented(cfg: CatalogConfig, centers, n: int, rng) -> dict[str, np.ndarray]:
    """The draws of docs/model.md §2, in the order recsim has always taken them, written out
    here independently of recsim.catalog (Beta extremeness and clickbait, uniform creators)."""
    k = cfg.n_topics
    cluster = rng.integers(0, cfg.n_clusters, size=n)
    topics = unit_rows(centers[cluster] + rng.normal(0.0, cfg.item_noise, size=(n, k)))
    e = rng.beta(*cfg.extremeness, size=n)
    quality_noise = rng.normal(0.0, cfg.quality.noise, size=n)
    clickbait = rng.beta(*cfg.clickbait, size=n)
    ln = cfg.length
    length = np.clip(ln.median * np.exp(ln.log_sd * rng.standard_normal(n)), ln.min, ln.max)
    creator = rng.integers(0, cfg.n_creators, size=n)
    topics_obs = unit_rows(topics + rng.normal(0.0, cfg.topic_noise, size=(n, k)))
    classifier_noise = rng.normal(0.0, cfg.classifier_noise, size=n)
    mean_e = cfg.extremeness[0] / sum(cfg.extremeness)
    q = cfg.quality
    return {"cluster": cluster, "topics": topics, "extremeness": e, "clickbait": clickbait, "length": length,
            "creator": creator, "topics_obs": topics_obs,
            "quality": np.clip(q.base - q.slope * (e - mean_e) + quality_noise, q.min, q.max),
            "classifier": np.clip(e + classifier_noise, 0.0, 1.0)}


@pytest.mark.parametrize("by_cluster", [None, {}])
def test_unset_catalog_is_the_draws_of_before(by_cluster):
    cfg = CatalogConfig(n_items=500, upload_rate=150 / 86400, extremeness_by_cluster=by_cluster)
    centers, catalog = _catalog(cfg)
    # the documented draw order, from the same streams
    topics, cat_rng, up_rng = (np.random.default_rng(s) for s in (101, 102, 103))
    np.testing.assert_array_equal(make_topic_centers(cfg, topics), centers)
    backlog_times = np.sort(cat_rng.uniform(START - cfg.backlog, START, size=cfg.n_items))
    n_new = int(up_rng.poisson(cfg.upload_rate * (END - START)))
    new_times = np.sort(up_rng.uniform(START, END, size=n_new))
    backlog = _items_as_documented(cfg, centers, cfg.n_items, cat_rng)
    fresh = _items_as_documented(cfg, centers, n_new, up_rng)
    assert catalog.n_items == cfg.n_items + n_new
    np.testing.assert_array_equal(catalog.upload_time, np.concatenate([backlog_times, new_times]))
    for name, values in backlog.items():
        np.testing.assert_array_equal(getattr(catalog, name), np.concatenate([values, fresh[name]]), err_msg=name)
    # and figures recorded from the code before the option existed (numpy's Generator streams)
    assert catalog.n_items == 790
    assert catalog.extremeness[:3].tolist() == [0.10010824938435026, 0.10424633290572988, 0.07856409726666153]
    recorded = {"extremeness": 131.3345733368987, "quality": 389.94782160119416, "clickbait": 219.17661684862637,
                "classifier": 139.83193724509619, "length": 238742.17993326968}
    for name, total in recorded.items():
        assert float(getattr(catalog, name).sum()) == pytest.approx(total, rel=1e-12), name
    assert (int(catalog.cluster.sum()), int(catalog.creator.sum())) == (1590, 395008)


@pytest.mark.parametrize("by_cluster", [None, {}])
def test_unset_users_are_the_draws_of_before(by_cluster):
    centers, _ = _catalog(CatalogConfig(n_items=500, upload_rate=150 / 86400))
    users = _users(PopulationConfig(appetite_by_cluster=by_cluster), centers, 300)
    rng = np.random.default_rng(104)  # the documented order (docs/model.md §4)
    p = PopulationConfig()
    home = rng.integers(0, centers.shape[0], size=300)
    theta0 = unit_rows(centers[home] + rng.normal(0.0, p.home_noise, size=(300, centers.shape[1])))
    a0 = rng.beta(*p.appetite, size=300)
    vulnerable = rng.random(300) < p.vulnerable_share
    np.testing.assert_array_equal(users["home_cluster"], home)
    np.testing.assert_array_equal(users["theta0"], theta0)
    np.testing.assert_array_equal(users["appetite0"], a0)
    np.testing.assert_array_equal(users["vulnerable"], vulnerable)
    # recorded from the code before the option existed
    assert users["appetite0"][:3].tolist() == [0.20420498576827725, 0.1711136286536749, 0.281227458943173]
    assert float(users["appetite0"].sum()) == pytest.approx(64.5978480986, rel=1e-10)
    assert (int(users["home_cluster"].sum()), int(users["vulnerable"].sum())) == (609, 36)


# ----------------------------------------------------------------------------- set
def test_named_cluster_items_take_their_distribution_and_nothing_else_changes():
    # 4 clusters of ~1000 backlog items each (plus ~75 uploads each); cluster 1 ~ Beta(6, 3):
    # mean 2/3, sd √(18 / (81·10)) = 0.149, so the SE of a cluster's mean is 0.149/√1000 ≈ 0.0047;
    # the default Beta(1.2, 6): mean 1/6, sd 0.131, SE ≈ 0.0041. Tolerance: 4 SE.
    plain_cfg = CatalogConfig(n_items=4000, upload_rate=150 / 86400, n_clusters=4)
    cfg = CatalogConfig(n_items=4000, upload_rate=150 / 86400, n_clusters=4, extremeness_by_cluster={1: (6.0, 3.0)})
    _, plain = _catalog(plain_cfg)
    _, tied = _catalog(cfg)
    mine = tied.cluster == 1
    np.testing.assert_array_equal(tied.cluster, plain.cluster)
    n = int(mine.sum())
    assert 900 < n < 1300
    se = math.sqrt(6 * 3 / (9**2 * 10)) / math.sqrt(n)
    assert abs(tied.extremeness[mine].mean() - 2 / 3) < 4 * se
    for j in (0, 2, 3):
        others = tied.cluster == j
        se_default = math.sqrt(1.2 * 6 / (7.2**2 * 8.2)) / math.sqrt(others.sum())
        assert abs(tied.extremeness[others].mean() - 1 / 6) < 4 * se_default
    # the uploads during the run belong to their clusters too
    fresh = (tied.upload_time >= START) & mine
    assert fresh.sum() > 30 and tied.extremeness[fresh].mean() > 0.5
    # every other draw is unchanged; the other clusters' items are the same items
    for name, values in _columns(plain).items():
        if name in ("extremeness", "quality", "classifier", "draws.extremeness"):
            np.testing.assert_array_equal(_columns(tied)[name][~mine], values[~mine], err_msg=name)
        else:
            np.testing.assert_array_equal(_columns(tied)[name], values, err_msg=name)
    # quality still centres on the mean of catalog.extremeness, and ê follows the new e
    np.testing.assert_array_equal(tied.extremeness, tied.draws.extremeness)
    made = item_attributes(cfg, tied.draws)
    for name in ("quality", "classifier"):
        np.testing.assert_array_equal(made[name], getattr(tied, name))


def test_discrete_override_and_key_order_do_not_matter():
    a = CatalogConfig(n_items=600, upload_rate=150 / 86400, extremeness_by_cluster={3: {"values": [0.9]}, 0: (6.0, 3.0)})
    b = CatalogConfig(n_items=600, upload_rate=150 / 86400, extremeness_by_cluster={0: (6.0, 3.0), 3: {"values": [0.9]}})
    _, ca = _catalog(a)
    _, cb = _catalog(b)
    assert (ca.extremeness[ca.cluster == 3] == 0.9).all()
    for name, values in _columns(ca).items():
        np.testing.assert_array_equal(_columns(cb)[name], values, err_msg=name)


def test_named_home_clusters_take_their_appetite_and_nothing_else_changes():
    # 3 clusters, 3000 users (~1000 a cluster); cluster 2 ~ Beta(8, 4): mean 2/3, sd
    # √(32 / (144·13)) = 0.131, SE of the mean ≈ 0.0041; default Beta(3, 11): mean 0.214,
    # sd 0.106, SE ≈ 0.0034. Tolerance: 4 SE.
    centers, _ = _catalog(CatalogConfig(n_items=300, upload_rate=150 / 86400, n_clusters=3))
    plain = _users(PopulationConfig(), centers, 3000)
    tied = _users(PopulationConfig(appetite_by_cluster={2: (8.0, 4.0)}), centers, 3000)
    mine = tied["home_cluster"] == 2
    n = int(mine.sum())
    assert 850 < n < 1150
    assert abs(tied["appetite0"][mine].mean() - 2 / 3) < 4 * math.sqrt(32 / (144 * 13)) / math.sqrt(n)
    assert abs(tied["appetite0"][~mine].mean() - 3 / 14) < 4 * math.sqrt(33 / (196 * 15)) / math.sqrt((~mine).sum())
    np.testing.assert_array_equal(tied["appetite"], tied["appetite0"])
    for name, values in plain.items():
        if name in ("appetite0", "appetite"):
            np.testing.assert_array_equal(tied[name][~mine], values[~mine], err_msg=name)
        else:
            np.testing.assert_array_equal(tied[name], values, err_msg=name)


# ----------------------------------------------------------------------------- errors
BASE = {"name": "t", "policies": ["random"]}


@pytest.mark.parametrize(("section", "field", "key", "fragment"), [
    ("catalog", "extremeness_by_cluster", 5, "must be in 0..4 (catalog.n_clusters is 5); got 5"),
    ("catalog", "extremeness_by_cluster", -1, "must be in 0..4 (catalog.n_clusters is 5); got -1"),
    ("catalog", "extremeness_by_cluster", "a", "keys must be cluster indices"),
    ("catalog", "extremeness_by_cluster", 1.5, "keys must be cluster indices"),
    ("catalog", "extremeness_by_cluster", True, "got true (a boolean)"),
    ("population", "appetite_by_cluster", 5, "must be in 0..4 (catalog.n_clusters is 5); got 5"),
    ("population", "appetite_by_cluster", -2, "got -2"),
    ("population", "appetite_by_cluster", "x1", "keys must be cluster indices"),
])
def test_bad_cluster_keys_are_one_clear_error_naming_the_field(section, field, key, fragment):
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict({**BASE, section: {field: {key: [2.0, 2.0]}}})
    assert len(caught.value.problems) == 1, caught.value.problems
    path, message = caught.value.problems[0]
    assert path == f"{section}.{field}"
    assert fragment in message


def test_appetite_keys_are_checked_against_the_catalogs_clusters():
    ok = scenario_from_dict({**BASE, "catalog": {"n_clusters": 8}, "population": {"appetite_by_cluster": {7: [8, 4]}}})
    assert ok.population.appetite_by_cluster == {7: (8.0, 4.0)}
    with pytest.raises(ScenarioError, match=r"population\.appetite_by_cluster: cluster indices must be in 0\.\.2"):
        scenario_from_dict({**BASE, "catalog": {"n_clusters": 3}, "population": {"appetite_by_cluster": {7: [8, 4]}}})


def test_bad_values_and_overrides():
    with pytest.raises(ScenarioError) as caught:
        scenario_from_dict({**BASE, "catalog": {"extremeness_by_cluster": {0: [True, 3]}}})
    assert caught.value.problems == [("catalog.extremeness_by_cluster.0.0", "expected a number, got true (a boolean)")]
    # --set gives the key as text; the resolved scenario dumps and reads back
    data = apply_overrides(BASE, ["catalog.extremeness_by_cluster.0=[6, 3]", "population.appetite_by_cluster.0=[8, 4]"],
                           "s.yaml")
    sc = scenario_from_dict(data)
    assert sc.catalog.extremeness_by_cluster == {0: (6.0, 3.0)}
    assert scenario_from_dict(sc.dump()) == sc


def test_cli_exits_2_without_a_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\npolicies: [random]\ncatalog:\n  extremeness_by_cluster: {5: [6, 3]}\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "recsim", "validate", str(path)], capture_output=True, text=True,
                            cwd=ROOT, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "catalog.extremeness_by_cluster: cluster indices must be in 0..4" in result.stderr


# ----------------------------------------------------------------------------- engines
TINY = {
    "name": "niche", "seed": 5, "horizon": "1d", "warmup": "12h", "replications": 1,
    "population": {"n_users": 30, "appetite_by_cluster": {0: [8, 4]}},
    "catalog": {"n_items": 300, "upload_rate": "100/d", "n_creators": 20, "extremeness_by_cluster": {0: [6, 3]},
                "creators": {"period": "12h"}},
    "recommender": {"slate_size": 5, "n_candidates": 40, "retrain_interval": "12h"},
    "policies": [{"name": "engagement", "type": "engagement", "params": {"min_clicks": 3}}],
    "outputs": {"metrics_interval": "12h"},
}


def _events(engine, scenario, path: Path):
    world = build_world(scenario, 0)
    result = engine(world, scenario.policies[0], EventLog(path, log_impressions=True))
    return world, result, pq.read_table(path).to_pandas()


def test_a_niche_scenario_runs_the_same_in_both_engines(tmp_path):
    scenario = scenario_from_dict(TINY)
    world = build_world(scenario, 0)
    home, a0 = world.state.arrays["home_cluster"].copy(), world.state.arrays["appetite0"].copy()
    cat = world.catalog
    e0, cluster = cat.draws.extremeness, cat.cluster
    _, ref, ref_events = _events(simulate, scenario, tmp_path / "reference.parquet")
    _, bat, bat_events = _events(simulate_batched, scenario, tmp_path / "batched.parquet")
    assert len(ref_events) > 0
    pd.testing.assert_frame_equal(bat_events, ref_events, check_exact=True)
    for key, value in ref.headline.items():
        assert bat.headline[key] == value or (math.isnan(value) and math.isnan(bat.headline[key])), key
    for key, value in ref.final_state.items():
        np.testing.assert_array_equal(bat.final_state[key], value, err_msg=key)
    # the world has the niche: cluster 0's items are extreme, its users have the appetite
    assert e0[cluster == 0].mean() > 0.5 > e0[cluster != 0].mean()
    assert a0[home == 0].mean() > 0.45 > a0[home != 0].mean()
    kinds = set(ref_events["event"].astype(str))
    assert {"watch", "retrain"} <= kinds, kinds
