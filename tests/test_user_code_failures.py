"""Nothing a user's code does ends in a traceback (issue 12, part 3 and 10).

A policy or a user-model component that raises (on its 50th call, in fit, at import), returns
bad slates, calls os._exit or sys.exit, runs out of memory, never returns or kills its worker
stops the run with one screen naming the policy (or ``user_model.<role>``), the task (policy ×
replication), the simulated time and the line of user code; what is wrong before the run is a
scenario error (exit code 2) at the path that names it. The user code lives in a module
written to a temporary folder, as a user's would.

Most cases run the engines in-process on a tiny world (a fraction of a second each); the
command line is run as a subprocess only for what only it shows (exit codes, one screen,
--debug, workers dying).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from support import one_screen

from recsim.config import ScenarioError, scenario_from_dict
from recsim.engine import simulate_batched, simulate_reference
from recsim.engine.core import check_slate
from recsim.engine.errors import (
    CallLimit,
    ComponentFailure,
    PolicyTimeout,
    SlateError,
    TaskError,
    TaskGuard,
    UserCodeError,
    WorkerDied,
    format_sim_time,
)
from recsim.eventlog import EventLog
from recsim.experiment import run_experiment
from recsim.users.model import ComponentError
from recsim.world import build_world

ENGINES = {"batched": simulate_batched, "reference": simulate_reference}
MODULE = "uc_user_code_failures"  # a name no other test module uses (a module is imported once per process); stable, so pytest-xdist workers collect the same test ids

# Requests in a run have 50 candidates; check_policy's have 40: "late" misbehaviour passes
# the conformance check at validation and shows only in a run.
SOURCE = '''
import os
import signal
import sys
import time

import numpy as np
from pydantic import BaseModel, ConfigDict

from recsim import Policy
from recsim.users.peers import FirstItemChoice


def late(request):
    return request.candidates.shape[0] == 50 and request.now > 3600


class FailsOn50th(Policy):
    def reset(self, context):
        self.calls = 0

    def recommend(self, request, rng):
        self.calls += 1
        if self.calls == 50:
            raise RuntimeError("boom on the 50th call")  # LINE:fails50
        return request.candidates[: request.slate_size]


class FailsInFit(Policy):
    def fit(self, feedback, now):
        if now > 0:
            raise ValueError("cannot fit on %d rows" % len(feedback))  # LINE:fit
    def recommend(self, request, rng):
        return request.candidates[: request.slate_size]


class FailsInUpdate(Policy):
    online = True

    def update(self, feedback):
        if feedback.time[0] > 7200:
            raise IndexError("update went wrong")  # LINE:update

    def recommend(self, request, rng):
        return request.candidates[: request.slate_size]


def failing_function(request, rng):
    if late(request):
        return {}["no such feature"]  # LINE:function
    return request.candidates[: request.slate_size]


def wrong_signature(request):
    return request.candidates[: request.slate_size]


class NoRecommend(Policy):
    pass


class Misbehaves(Policy):
    """Fails late in one of several ways (params.kind)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        kind: str = "none"

    def recommend(self, request, rng):  # LINE:misbehaves_def
        c, k, kind = request.candidates, request.slate_size, self.params.kind
        if not late(request):
            return c[:k]
        if kind == "exit":
            os._exit(3)  # LINE:exit
        if kind == "sys_exit":
            sys.exit(4)  # LINE:sys_exit
        if kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if kind == "memory":
            return np.ones(10**16)[:k]  # LINE:memory
        if kind == "spin":
            while True: k = k + 0  # LINE:spin
        if kind == "sleep":
            time.sleep(10**6)  # LINE:sleep
        if kind == "slow":
            time.sleep(0.5)
            return c[:k]
        if kind == "swallow":  # a policy that catches everything cannot swallow the limit
            while True:
                try:
                    time.sleep(0.01)
                except Exception:
                    pass
        if kind == "duplicates":
            return np.repeat(c[:1], k)
        if kind == "floats":
            return c[:k].astype(float)
        if kind == "outside":
            return np.arange(10**6, 10**6 + k)
        if kind == "too_long":
            return c[: k + 3]
        if kind == "empty":
            return c[:0]
        if kind == "none":
            return None
        return c[:k]


class AlwaysDuplicates(Policy):
    def recommend(self, request, rng):
        return np.repeat(request.candidates[:1], request.slate_size)


class AlwaysRaises(Policy):
    def recommend(self, request, rng):
        raise AttributeError("no attribute 'profile'")  # LINE:always


class TooFewSlates(Policy):
    def recommend(self, request, rng):
        return request.candidates[: request.slate_size]

    def recommend_batch(self, batch, rngs):
        return [batch.candidates[i, : batch.slate_size] for i in range(len(batch) - 1)]


class DuplicateWarmup(Policy):
    def recommend(self, request, rng):
        c = request.candidates
        return np.repeat(c[:1], request.slate_size) if late(request) or request.now < 0 and c.shape[0] == 50 \\
            else c[: request.slate_size]


class ChoiceFailsLate(FirstItemChoice):
    """Raises after scoring 40 slates."""

    def probabilities(self, state, terms):
        self.__dict__["rows"] = self.__dict__.get("rows", 0) + terms["allure"].shape[0]
        if self.__dict__["rows"] > 40:
            raise ZeroDivisionError("late division by zero")  # LINE:component
        return super().probabilities(state, terms)


class ChoiceFailsAlone(FirstItemChoice):
    """Raises when asked about single-item slates, as oracles ask (click_probability_alone)."""

    def probabilities(self, state, terms):
        if terms["allure"].shape[1] == 1 and terms["allure"].shape[0] > 50:
            raise FloatingPointError("cannot score one item alone")  # LINE:oracle
        return super().probabilities(state, terms)


class ChoiceNaNLate(FirstItemChoice):
    def probabilities(self, state, terms):  # LINE:nan_def
        out = super().probabilities(state, terms)
        self.__dict__["rows"] = self.__dict__.get("rows", 0) + terms["allure"].shape[0]
        return out * np.nan if self.__dict__["rows"] > 40 else out
'''

BASE = {
    "name": "uc",
    "seed": 3,
    "horizon": "1d",
    "warmup": "0s",
    "replications": 1,
    "workers": 1,
    "population": {"n_users": 5},
    "catalog": {"n_items": 300},
    "recommender": {"slate_size": 5, "n_candidates": 50},
    "outputs": {"log_impressions": False, "validity_panel": 0},
}


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory) -> Path:
    """A folder holding the user's module (on sys.path, as recsim puts a scenario's folder)."""
    folder = tmp_path_factory.mktemp("user_code")
    (folder / f"{MODULE}.py").write_text(textwrap.dedent(SOURCE), encoding="utf-8")
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))


def line_of(marker: str) -> int:
    """The line of the user module holding ``# LINE:<marker>``."""
    lines = textwrap.dedent(SOURCE).splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.rstrip().endswith(f"# LINE:{marker}"))


def scenario(policy, **changes):
    data = {**BASE, "policies": [policy] if not isinstance(policy, list) else policy}
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            value = {**data[key], **value}
        data[key] = value
    return scenario_from_dict(data)


def mine(name: str, **params) -> dict:
    spec = {"name": "mine", "type": f"{MODULE}:{name}"}
    return {**spec, "params": params} if params else spec


def run(sc, engine="batched"):
    world = build_world(sc, 0)
    return ENGINES[engine](world, sc.policies[0], EventLog(None))


def assert_names_user_line(error: UserCodeError, marker: str) -> None:
    assert error.location == f"{Path(error.location.rsplit(':', 1)[0])}:{line_of(marker)}", error.location
    assert error.location.rsplit(":", 1)[0].endswith(f"{MODULE}.py"), error.location
    assert error.source and error.source in str(error), str(error)
    assert error.location in str(error)


# ============================================================================ a policy that raises
@pytest.mark.parametrize("engine", list(ENGINES))
def test_a_policy_failing_on_its_50th_call_names_policy_task_time_and_line(user_dir, engine):
    sc = scenario(mine("FailsOn50th"))
    with pytest.raises(UserCodeError) as info:
        run(sc, engine)
    error = info.value
    assert isinstance(error, TaskError) and isinstance(error, RuntimeError)
    assert error.policy == "mine" and error.replication == 0 and error.task == "mine × replication 0"
    assert error.time is not None and 0 <= error.time <= 86400
    assert "RuntimeError: boom on the 50th call" in error.message
    assert f"policy 'mine' ({MODULE}:FailsOn50th)" in error.message
    assert error.call == ("recommend" if engine == "reference" else "recommend_batch")
    assert_names_user_line(error, "fails50")
    text = str(error)
    assert "mine × replication 0" in text and format_sim_time(error.time) in text
    assert len(text.splitlines()) <= 6


def test_a_failing_fit_names_the_retrain_time(user_dir):
    sc = scenario(mine("FailsInFit"), recommender={"retrain_interval": "6h"})
    with pytest.raises(UserCodeError) as info:
        run(sc)
    assert info.value.call == "fit" and info.value.time == 6 * 3600.0
    assert "ValueError: cannot fit" in info.value.message
    assert_names_user_line(info.value, "fit")


def test_an_online_policy_failing_in_update_names_the_event_time(user_dir):
    sc = scenario(mine("FailsInUpdate"), engine="reference")
    with pytest.raises(UserCodeError, match="update raised IndexError: update went wrong") as info:
        run(sc, "reference")
    assert info.value.call == "update" and info.value.time > 7200
    assert_names_user_line(info.value, "update")


def test_a_function_policy_that_raises_names_the_function_line(user_dir):
    with pytest.raises(UserCodeError, match="KeyError: 'no such feature'") as info:
        run(scenario(mine("failing_function")), "reference")
    assert_names_user_line(info.value, "function")


@pytest.mark.parametrize(("kind", "fragment", "marker"), [
    ("sys_exit", "called sys.exit(4)", "sys_exit"),
    ("memory", "ran out of memory", "memory"),
])
def test_exits_and_memory_errors_become_errors_naming_the_line(user_dir, kind, fragment, marker):
    with pytest.raises(UserCodeError) as info:
        run(scenario(mine("Misbehaves", kind=kind)))
    assert fragment in info.value.message, info.value.message
    assert_names_user_line(info.value, marker)


# ============================================================================ slates
@pytest.mark.parametrize(("kind", "problem", "slate"), [
    ("duplicates", "repeats item(s)", "(int64 array)"),
    ("floats", "of type float64, not integers", ".0, "),
    ("outside", "1000000, 1000001, 1000002, 1000003, 1000004 are not among the request's 50 candidates",
     "[1000000, 1000001"),
    ("too_long", "holds 8 items, more than slate_size = 5", "[" ),
    ("empty", "it is empty; set may_end_sessions", "[] (int64 array)"),
    ("none", "not an array of item ids", "None"),
])
def test_a_bad_slate_names_the_policy_task_problem_and_shows_the_slate(user_dir, kind, problem, slate):
    with pytest.raises(SlateError) as info:
        run(scenario(mine("Misbehaves", kind=kind)), "reference" if kind == "none" else "batched")
    error = info.value
    assert isinstance(error, ValueError)  # as before
    assert f"policy 'mine' ({MODULE}:Misbehaves)" in error.message and problem in error.message, error.message
    assert error.task == "mine × replication 0" and error.time > 3600
    assert slate in error.slate and f"slate: {error.slate}" in str(error)
    # the user's method that served it (not recsim's default recommend_batch)
    assert error.location.endswith(f"{MODULE}.py:{line_of('misbehaves_def')}")
    assert "def recommend(self, request, rng):" in str(error)
    assert len(str(error).splitlines()) <= 8


def test_a_batch_of_the_wrong_length_is_named(user_dir):
    with pytest.raises(SlateError, match=r"policy 'mine' .*: recommend_batch returned \d+ slates for \d+ requests"):
        run(scenario(mine("TooFewSlates")))


def test_check_slate_alone_says_what_is_wrong():
    with pytest.raises(SlateError) as info:
        check_slate(object(), np.array([1, 1, 2]), np.arange(10), 5)
    assert info.value.problem == "it repeats item(s) 1"
    assert "[1, 1, 2]" in info.value.slate


def test_a_user_warmup_policy_is_checked_like_any_other(user_dir):
    sc = scenario("random", warmup="12h", warmup_policy=f"{MODULE}:DuplicateWarmup")
    with pytest.raises(SlateError) as info:
        run(sc)
    assert info.value.message.startswith(f"the warm-up policy '{MODULE}:DuplicateWarmup'")
    assert info.value.time < 0 and "(warm-up)" in str(info.value)


# ============================================================================ before the run
@pytest.mark.parametrize(("policy", "fragment"), [
    ("builtins:print", "is a built-in function, not a policy"),
    ("builtins:len", "is a built-in function, not a policy"),
    (f"{MODULE}:wrong_signature", "cannot be called as f(request, rng): its signature is wrong_signature(request)"),
    (f"{MODULE}:NoRecommend", "does not implement recommend(request, rng)"),
    ("collections:OrderedDict", "neither a recsim Policy subclass nor a function"),
])
def test_what_is_not_a_policy_is_refused_at_validation(user_dir, policy, fragment):
    for where, changes in (("policies.0.type", {}), ("warmup_policy", {"warmup_policy": policy})):
        with pytest.raises(ScenarioError) as info:
            scenario(policy if not changes else "random", **changes)
        problems = dict(info.value.problems)
        assert fragment in problems[where], problems


@pytest.mark.parametrize(("source", "fragment"), [
    ("from recsim import Policy\nclass P(Policy)\n    pass\n", "SyntaxError: expected ':' at {file}:2: class P(Policy)"),
    ("from recsim import Policy\nsettings = {}\nLIMIT = settings['limit']\n",
     "KeyError: 'limit' at {file}:3, in <module>: LIMIT = settings['limit']"),
    ("import no_such_dependency_xyz\n", "ModuleNotFoundError: No module named 'no_such_dependency_xyz' at {file}:1"),
])
def test_a_module_failing_at_import_is_a_scenario_error_with_its_line(tmp_path, monkeypatch, source, fragment):
    name = f"broken_{abs(hash(source)) % 10**8}"
    file = tmp_path / f"{name}.py"
    file.write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ScenarioError) as info:
        scenario({"name": "p", "type": f"{name}:P"})
    message = dict(info.value.problems)["policies.0.type"]
    assert f"importing module '{name}'" in message and fragment.format(file=file) in message, message


def test_validation_runs_check_policy_on_every_user_policy_and_the_warmup(user_dir):
    from recsim.cli import _check_user_components

    wrapped = {"name": "wrapped", "type": "diversity", "params": {"base": f"{MODULE}:failing_function"}}
    sc = scenario(["random", mine("Misbehaves", kind="none"), wrapped], warmup="1h",
                  warmup_policy=f"{MODULE}:FailsOn50th")
    _check_user_components(sc, "s.yaml")  # they all pass: they misbehave only in a run

    wrapped = {"name": "wrapped", "type": "diversity", "params": {"base": f"{MODULE}:AlwaysRaises"}}
    sc = scenario(["random", mine("AlwaysDuplicates"), wrapped], warmup="1h", warmup_policy=f"{MODULE}:AlwaysRaises")
    with pytest.raises(ScenarioError) as info:
        _check_user_components(sc, "s.yaml")
    problems = dict(info.value.problems)
    assert set(problems) == {"policies.1.type", "policies.2.type", "warmup_policy"}, problems
    assert "property 'no_duplicates' failed" in problems["policies.1.type"]
    for path in ("policies.2.type", "warmup_policy"):
        assert "AttributeError: no attribute 'profile'" in problems[path]
        assert f"{MODULE}.py:{line_of('always')}" in problems[path], problems[path]


def test_a_policy_that_never_returns_fails_validation_within_five_time_limits(tmp_path, monkeypatch):
    from recsim.cli import _check_user_components

    (tmp_path / "hangs_at_check.py").write_text(textwrap.dedent('''
        from recsim import Policy
        class Hangs(Policy):
            def recommend(self, request, rng):
                while True:
                    pass
    '''), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    sc = scenario({"name": "h", "type": "hangs_at_check:Hangs"}, recommender={"policy_time_limit": "0.1s"})
    with pytest.raises(ScenarioError) as info:
        _check_user_components(sc, "s.yaml")
    message = dict(info.value.problems)["policies.0.type"]
    assert "ran past 5 × recommender.policy_time_limit (0.5 s)" in message
    assert "hangs_at_check.py:5" in message


# ============================================================================ time limit
@pytest.mark.parametrize(("kind", "engine", "marker"), [
    ("spin", "batched", "spin"),
    ("sleep", "batched", "sleep"),      # blocked in C: SIGALRM interrupts it
    ("swallow", "reference", None),     # `except Exception` does not swallow the limit
])
def test_a_policy_that_never_returns_is_stopped_at_the_time_limit(user_dir, kind, engine, marker):
    sc = scenario(mine("Misbehaves", kind=kind), recommender={"policy_time_limit": "0.5s"})
    with pytest.raises(PolicyTimeout) as info:
        run(sc, engine)
    error = info.value
    assert "ran past recommender.policy_time_limit (0.5 s)" in error.message
    assert error.task == "mine × replication 0" and error.time > 3600 and error.limit == 0.5
    if marker:
        assert_names_user_line(error, marker)
    assert "it was running" in str(error)


def test_the_time_limit_holds_in_a_thread_too(user_dir):
    """Off the main thread (a Dask worker, say) a watchdog thread interrupts the call; a call
    blocked in C is reported when it returns, with the time it took."""
    outcome = {}

    def target(kind):
        try:
            run(scenario(mine("Misbehaves", kind=kind), recommender={"policy_time_limit": "0.2s"}))
        except BaseException as exc:  # noqa: BLE001
            outcome[kind] = exc

    for kind in ("spin", "slow"):
        thread = threading.Thread(target=target, args=(kind,))
        thread.start()
        thread.join(20)
        assert isinstance(outcome.get(kind), PolicyTimeout), outcome
    assert_names_user_line(outcome["spin"], "spin")
    assert "took " in outcome["slow"].message and outcome["slow"].elapsed >= 0.5  # reported on return
    assert not [t for t in threading.enumerate() if t.name == "recsim-policy-time-limit"]


def test_call_limit_leaves_sigalrm_as_it_found_it():
    import signal

    before = signal.getsignal(signal.SIGALRM)
    limit = CallLimit(5.0)
    limit.begin()
    assert limit.end() < 5.0
    assert limit.mode == "alarm" and signal.getsignal(signal.SIGALRM) is not before
    limit.close()
    assert signal.getsignal(signal.SIGALRM) == before and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


# ============================================================================ user-model components
@pytest.mark.parametrize("engine", list(ENGINES))
def test_a_component_raising_names_its_role_the_task_and_the_line(user_dir, engine):
    sc = scenario("random", user_model={"choice": f"{MODULE}:ChoiceFailsLate"})
    with pytest.raises(ComponentFailure) as info:
        run(sc, engine)
    error = info.value
    assert isinstance(error, ComponentError)
    assert error.message.startswith("user_model.choice: the component ChoiceFailsLate")
    assert "probabilities raised ZeroDivisionError: late division by zero" in error.message
    assert error.task == "random × replication 0" and error.time is not None
    assert_names_user_line(error, "component")


def test_a_component_breaking_its_contract_names_the_task_and_its_method(user_dir):
    sc = scenario("random", user_model={"choice": f"{MODULE}:ChoiceNaNLate"})
    with pytest.raises(ComponentFailure, match="user_model.choice: the component ChoiceNaNLate .*not finite") as info:
        run(sc)
    assert info.value.task == "random × replication 0"
    assert info.value.location.endswith(f"{MODULE}.py:{line_of('nan_def')}")
    assert "the method whose output broke it" in str(info.value)


def test_a_component_failing_under_an_oracle_policy_is_blamed_not_the_policy(user_dir):
    sc = scenario("engagement_oracle", user_model={"choice": f"{MODULE}:ChoiceFailsAlone"})
    with pytest.raises(ComponentFailure) as info:
        run(sc)
    assert info.value.actor == "user_model.choice"
    assert "called by policy 'engagement_oracle' (recommend_batch)" in str(info.value)
    assert_names_user_line(info.value, "oracle")


# ============================================================================ across processes
def test_every_error_survives_a_pickle_round_trip_with_its_attributes():
    task = {"policy": "p", "replication": 2, "point": 1, "time": -60.0}
    errors = [
        TaskError("failed", details=["more"], **task),
        UserCodeError("policy 'p' failed", actor="policy 'p'", call="fit", error="ValueError: x", **task),
        SlateError("bad slate", problem="it repeats item(s) 3", slate="[3, 3]", actor="policy 'p'", **task),
        PolicyTimeout("too slow", limit=1.0, elapsed=2.5, **task),
        ComponentFailure("user_model.choice: the component C failed", component="m.C", actor="user_model.choice",
                         **task),
        WorkerDied(tasks=["p/rep0", "q/rep1"]),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and copy.__dict__ == error.__dict__ and str(copy) == str(error)
    assert "sweep grid point 1" in str(errors[0]) and "(warm-up)" in str(errors[0])
    assert "p/rep0, q/rep1" in str(errors[-1])


def test_an_error_in_a_worker_process_reaches_the_parent_intact(user_dir, tmp_path):
    sc = scenario(["random", mine("FailsOn50th")], replications=2)
    with pytest.raises(UserCodeError) as info:
        run_experiment(sc, tmp_path / "run", workers=2)
    error = info.value
    assert error.policy == "mine" and error.replication in (0, 1) and error.call == "recommend_batch"
    assert_names_user_line(error, "fails50")


def test_the_guard_names_the_task_of_recsims_own_errors():
    sc = scenario("random")
    with pytest.raises(ZeroDivisionError) as info, TaskGuard(sc, "random", 1):
        1 / 0  # noqa: B018
    if sys.version_info >= (3, 11):
        assert "in task random × replication 1" in info.value.__notes__


# ============================================================================ the command line
def recsim(*args, cwd: Path, code: str | None = None):
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS", "LINES")}
    env["NO_COLOR"] = "1"
    command = [sys.executable, "-m", "recsim"] if code is None else [sys.executable, "-c", code]
    return subprocess.run([*command, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def cli_scenario(folder: Path, policy: str, **extra) -> Path:
    lines = [
        "name: uc", "seed: 3", "horizon: 1d", "warmup: 0s", "workers: 1", "population: {n_users: 5}",
        "catalog: {n_items: 300}", "recommender: {slate_size: 5, n_candidates: 50}", "outputs: {log_impressions: false}",
        "policies:", f"  - {policy}", *(f"{key}: {value}" for key, value in extra.items()),
    ]
    path = folder / "scenario.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_cli_a_failing_policy_is_one_screen_exit_1_and_debug_shows_the_traceback(user_dir, tmp_path):
    cli_scenario(user_dir, f"{{name: mine, type: '{MODULE}:FailsOn50th'}}")
    result = recsim("run", "scenario.yaml", "-q", "--no-report", "--out", tmp_path / "r1", cwd=user_dir)
    one_screen(result, 1, "policy 'mine'", "RuntimeError: boom on the 50th call", "mine × replication 0",
               f"{MODULE}.py:{line_of('fails50')}", 'raise RuntimeError("boom on the 50th call")',
               "run with --debug for the traceback", "no complete folder was written",
               str(tmp_path / ".r1.partial"), "--overwrite")
    assert not (tmp_path / "r1").exists() and (tmp_path / ".r1.partial").is_dir()
    debug = recsim("run", "scenario.yaml", "-q", "--no-report", "--out", tmp_path / "r2", "--debug", cwd=user_dir)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "boom on the 50th call" in debug.stderr


def test_cli_os_exit_in_a_policy_is_caught_inline(user_dir, tmp_path):
    cli_scenario(user_dir, f"{{name: mine, type: '{MODULE}:Misbehaves', params: {{kind: exit}}}}")
    result = recsim("run", "scenario.yaml", "-q", "--no-report", "--out", tmp_path / "r", cwd=user_dir)
    one_screen(result, 1, "called os._exit(3)", "mine × replication 0", f"{MODULE}.py:{line_of('exit')}")


def test_cli_a_killed_worker_is_one_screen(user_dir, tmp_path):
    cli_scenario(user_dir, f"{{name: mine, type: '{MODULE}:Misbehaves', params: {{kind: kill}}}}\n  - random",
                 replications=2)
    result = recsim("run", "scenario.yaml", "-q", "--no-report", "-j", "2", "--out", tmp_path / "r", cwd=user_dir)
    one_screen(result, 1, "worker process died")


def test_cli_validate_reports_user_code_problems_as_exit_2(user_dir):
    cli_scenario(user_dir, "builtins:print", warmup_policy=f"'{MODULE}:NoRecommend'")
    result = recsim("validate", "scenario.yaml", cwd=user_dir)
    one_screen(result, 2, "policies.0.type", "built-in function", "warmup_policy", "does not implement recommend")


def test_cli_compare_reads_a_run_without_importing_its_policies(user_dir, tmp_path):
    sc = scenario(["chronological", mine("FailsInFit")], replications=2, recommender={"retrain_interval": "0s"})
    path = run_experiment(sc, tmp_path / "run", workers=1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = recsim("compare", path, cwd=elsewhere)  # the policy's module is not importable here
    assert result.returncode == 0, result.stderr
    assert "cannot import" not in result.stderr and (path / "comparison.csv").exists()


def test_cli_an_unforeseen_error_is_one_screen_and_an_interrupt_exits_130(tmp_path):
    patch = (
        "import sys, recsim.cli as cli\n"
        "def boom(*a, **k):\n    raise {exc}\n"
        "cli._unused_behaviour = boom\n"
        "sys.argv = ['recsim', *sys.argv[1:]]\n"
        "cli.main()\n"
    )
    baseline = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml"
    result = recsim("validate", baseline, cwd=tmp_path, code=patch.format(exc="LookupError('no such table')"))
    one_screen(result, 1, "LookupError: no such table", "run with --debug")
    result = recsim("validate", baseline, cwd=tmp_path, code=patch.format(exc="KeyboardInterrupt"))
    assert result.returncode == 130 and "Traceback" not in result.stderr, result.stderr
