"""User-model components of one's own, as a user meets them: how their parameters are found
and recorded, what is refused before a run, and what stops a run during it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsim.config import ScenarioError, scenario_from_dict
from recsim.engine import simulate_batched, simulate_reference
from recsim.eventlog import EventLog
from recsim.experiment import make_tasks, partition, run_task
from recsim.users import ChoiceModel, SessionRule
from recsim.users.default import LogitChoice, LogNormalWatch
from recsim.users.model import ComponentError, build_user_model
from recsim.world import build_world

ROOT = Path(__file__).resolve().parents[1]

BASE = {
    "name": "plugins", "seed": 3, "horizon": "1d", "warmup": "12h",
    "population": {"n_users": 12}, "catalog": {"n_items": 300},
    "recommender": {"slate_size": 5, "n_candidates": 30},
    "policies": ["random"],
}


class NaNProbabilities(ChoiceModel):
    def probabilities(self, state, terms):
        A = terms["allure"]
        return np.full((A.shape[0], A.shape[1] + 1), np.nan)


class TooLong(LogNormalWatch):
    """A response that watches twice the item (keeps LogNormalWatch's Params: behaviour.watch)."""

    def watch_time(self, state, items, terms, draws):
        return 2.0 * items.length


class FloatFlags(SessionRule):
    def after_watch(self, state, items, terms, watch_time, value, draws):
        return np.full(state.n_rows, 0.1), {}


class Steep(LogitChoice):
    """The default logit under another name: reads behaviour.choice like the default."""


class ChoiceStreamThief(SessionRule):
    streams = ("choice",)

    def after_watch(self, state, items, terms, watch_time, value, draws):
        return draws.uniform("choice") < 0.5, {}


def _scenario(**user_model):
    return scenario_from_dict({**BASE, "user_model": user_model})


# ----------------------------------------------------------------------------- parameters
def test_a_subclass_of_a_default_component_reads_its_behaviour_section():
    sc = scenario_from_dict({**BASE, "behaviour": {"choice": {"beta": 5.0}},
                             "user_model": {"choice": f"{__name__}:Steep"}})
    model = build_user_model(sc)
    assert isinstance(model.choice, Steep)
    assert model.choice.params.beta == 5.0
    with pytest.raises(ScenarioError, match="behaviour.choice"):
        scenario_from_dict({**BASE, "user_model": {"choice": {"type": f"{__name__}:Steep", "params": {"beta": 5}}}})


def test_the_resolved_scenario_records_every_component_parameter():
    sc = _scenario(session={"type": "patience", "params": {"initial": 4}})
    assert sc.dump()["user_model"]["session"]["params"] == {
        "initial": 4.0, "threshold": 0.0, "cost": 1.0, "no_click_cost": 1.0}
    # and the record reads back as the same scenario
    assert scenario_from_dict(sc.dump()).dump() == sc.dump()


def test_a_component_cannot_draw_from_the_engines_streams():
    with pytest.raises(ScenarioError, match="engine draws from itself"):
        _scenario(session=f"{__name__}:ChoiceStreamThief")


# ----------------------------------------------------------------------------- during a run
@pytest.mark.parametrize("engine", [simulate_batched, simulate_reference], ids=["batched", "reference"])
@pytest.mark.parametrize(("role", "cls", "message"), [
    ("choice", "NaNProbabilities", "negative or not finite"),
    ("response", "TooLong", "outside \\[0, item length\\]"),
    ("session", "FloatFlags", "expected bool"),
])
def test_a_component_breaking_its_contract_stops_the_run_naming_it(engine, role, cls, message):
    sc = _scenario(**{role: f"{__name__}:{cls}"})
    with pytest.raises(ComponentError, match=f"user_model.{role}: the component {cls} .*{message}"):
        engine(build_world(sc, 0), sc.policies[0], EventLog(None))


def test_recsims_own_components_are_not_wrapped():
    sc = _scenario(choice="cascade", session="patience")
    world = build_world(sc, 0)
    assert world.model.guarded(world.state) is world.model


# ----------------------------------------------------------------------------- outputs
def test_the_users_table_holds_the_models_own_fields(tmp_path):
    sc = scenario_from_dict({
        **BASE, "catalog": {"n_items": 300, "clickbait": {"values": [0.0, 1.0]}, "length": {"median": "1h"}},
        "user_model": {"choice": "first_item", "response": "lts_engagement", "transition": "lts_exposure",
                       "relaxation": "none",
                       "session": {"type": "patience", "params": {"initial": 5, "threshold": 2}}},
    })
    run_task(make_tasks(sc, tmp_path)[0])
    users = pd.read_parquet(partition(tmp_path, "users", "random", 0))
    assert {"npe", "patience", "ubar", "impulse", "slow"} <= set(users.columns)
    final = users[users.stage == "final"]
    # wellbeing is the model's own: sigmoid(sensitivity · NPE)
    np.testing.assert_allclose(final["wellbeing"], 1 / (1 + np.exp(-0.01 * final["npe"])), rtol=1e-12)
    assert final["npe"].std() > 0


# ----------------------------------------------------------------------------- the command line
def _module(tmp_path: Path, source: str) -> None:
    (tmp_path / "mine.py").write_text(textwrap.dedent(source), encoding="utf-8")


def _recsim(*args, cwd: Path):
    return subprocess.run([sys.executable, "-m", "recsim", *args], capture_output=True, text=True, cwd=cwd)


def test_validate_holds_a_scenarios_own_component_to_the_conformance_checks(tmp_path):
    _module(tmp_path, """
        import numpy as np
        from recsim.users import ChoiceModel

        class Global(ChoiceModel):
            def probabilities(self, state, terms):
                A = terms["allure"]
                p = np.random.random((A.shape[0], A.shape[1] + 1))  # global random state
                return p / p.sum(axis=1, keepdims=True)
    """)
    (tmp_path / "s.yaml").write_text("name: s\npolicies: [random]\nuser_model: {choice: 'mine:Global'}\n",
                                     encoding="utf-8")
    result = _recsim("validate", "s.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert "Traceback" not in result.stderr
    assert "user_model.choice.type" in result.stderr
    assert "no_global_random" in result.stderr or "deterministic" in result.stderr


def test_validate_notes_behaviour_settings_no_component_reads(tmp_path):
    result = _recsim("validate", str(ROOT / "scenarios/recsim_long_term_satisfaction.yaml"),
                     "--set", "behaviour.watch.mu=-1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "behaviour.watch is set but not used: response is 'lts_engagement'" in result.stdout
