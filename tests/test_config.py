"""Scenario files: units, defaults, policy specs, overrides, dumps, the JSON Schema and the
scenario reference (scenarios/README.md), tested against recsim.config and recsim.units."""

from __future__ import annotations

import json
import math
import re
import typing
from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter

from recsim.config import (
    PolicySpec,
    Scenario,
    ScenarioError,
    UserModelConfig,
    apply_overrides,
    load_scenario,
    read_scenario_data,
    scenario_from_dict,
    scenario_json_schema,
)
from recsim.units import format_duration, parse_duration, parse_rate

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
MINUTE, HOUR, DAY, WEEK = 60.0, 3600.0, 86400.0, 7 * 86400.0


def minimal(**extra: Any) -> dict[str, Any]:
    return {"name": "t", "policies": ["random"], **extra}


def problems_of(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data, source="s.yaml")
    return info.value.problems


def paths_of(data: Any) -> list[str]:
    return [path for path, _ in problems_of(data)]


# ============================================================================ units: durations
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45.0),
        ("30m", 30 * MINUTE),
        ("3min", 3 * MINUTE),
        ("6h", 6 * HOUR),
        ("14d", 14 * DAY),
        ("2w", 2 * WEEK),
        ("1.5h", 1.5 * HOUR),
        (".5h", 0.5 * HOUR),
        ("1e3s", 1000.0),
        (" 5 d ", 5 * DAY),
        ("90", 90.0),  # a bare number means seconds
        ("0s", 0.0),
        (90, 90.0),
        (1.5, 1.5),
        (0, 0.0),
    ],
)
def test_parse_duration_valid_forms(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-15)
    assert isinstance(parse_duration(text), float)


@pytest.mark.parametrize(
    "bad",
    ["5D", "1d2h", "", "   ", "abc", "5 days", "d", "1.5/d", "14 d s", "1,5h", None, [1], {"d": 1}],
)
def test_parse_duration_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="duration such as"):
        parse_duration(bad)


@pytest.mark.parametrize("bad", ["-1d", "-30s", -5, -0.5])
def test_parse_duration_rejects_negatives(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_negative_number_duration_says_negative():
    with pytest.raises(ValueError, match="negative"):
        parse_duration(-5)


@pytest.mark.parametrize("bad", [True, False])
def test_parse_duration_rejects_bools(bad):
    # YAML turns `yes`/`no`/`true` into bools; they must not pass as 1 s / 0 s.
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_duration_and_rate_reject_nan_and_inf(bad):
    for parse in (parse_duration, parse_rate):
        try:
            parse(bad)
        except ValueError:
            continue
        raise AssertionError(f"{parse.__name__}({bad!r}) was accepted")


# ============================================================================ units: rates
@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("1.5/d", 1.5 / DAY),
        ("0.04/h", 0.04 / HOUR),
        ("6/min", 6 / MINUTE),
        ("1/m", 1 / MINUTE),
        ("2/s", 2.0),
        ("1/w", 1 / WEEK),
        (" 3 / h ", 3 / HOUR),
        ("1e-3/s", 1e-3),
        ("150/d", 150 / DAY),
        (0.5, 0.5),  # a bare number means per second
        (0, 0.0),
    ],
)
def test_parse_rate_valid_forms(text, per_second):
    assert parse_rate(text) == pytest.approx(per_second, rel=1e-15)


@pytest.mark.parametrize(
    "bad", ["1.5", "1.5/day", "1.5 per d", "/d", "1.5/", "14d", "abc", "", None, [1.5]]
)
def test_parse_rate_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="rate such as"):
        parse_rate(bad)


@pytest.mark.parametrize("bad", ["-1/d", -0.1, True, False])
def test_parse_rate_rejects_negatives_and_bools(bad):
    with pytest.raises(ValueError):
        parse_rate(bad)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (DAY, "1d"), (2 * WEEK, "2w"), (3 * HOUR, "3h"),
        (90.0, "90s"), (30 * MINUTE, "30m"), (0.0, "0s"),
    ],
)
def test_format_duration_uses_largest_whole_unit(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(format_duration(seconds)) == seconds


# ============================================================================ defaults (§2.9)
DESIGN_DEFAULTS = [
    ("horizon", 14 * DAY),
    ("warmup", 7 * DAY),
    ("warmup_policy", "random"),
    ("catalog.n_topics", 20),
    ("catalog.n_clusters", 5),
    ("catalog.cluster_concentration", 0.3),
    ("catalog.item_noise", 0.05),
    # departs from the design's 5000 items and 150 uploads a day (issue 14, docs/model.md §9):
    # with watched items left out of the candidates, the engagement optimizer ran the 5000-item
    # catalog's extreme tail dry within the baseline's three weeks; ten times the catalog and
    # uploads keeps every region of it far larger than what a user watches
    ("catalog.n_items", 50_000),
    ("catalog.backlog", 60 * DAY),
    ("catalog.upload_rate", 1500 / DAY),
    ("recommender.exclude_watched", True),
    ("catalog.extremeness", (1.2, 6.0)),
    ("catalog.quality.base", 0.5),
    ("catalog.quality.slope", 0.6),
    ("catalog.quality.noise", 0.2),
    ("catalog.clickbait", (2.0, 5.0)),
    ("catalog.length.median", 240.0),
    ("catalog.length.log_sd", 0.7),
    ("catalog.length.min", 15.0),
    ("catalog.length.max", 3 * HOUR),
    ("catalog.classifier_noise", 0.1),
    ("population.home_noise", 0.05),
    ("population.appetite", (3.0, 11.0)),
    ("population.vulnerable_share", 0.1),
    ("population.vulnerable_susceptibility", 4.0),
    ("population.susceptibility_log_sd", 0.2),
    ("behaviour.allure.w_r", 3.0),
    # departs from the design's 1.5: calibrated to Milli et al.'s field experiment (issue 14,
    # validation target 13; 1.5 gave about 1.0 SD of amplification against 0.24–0.47 published)
    ("behaviour.allure.w_e", 0.75),
    ("behaviour.allure.w_c", 0.5),
    ("behaviour.allure.delta", 0.12),
    ("behaviour.allure.omega", 0.1),
    ("behaviour.value.v_r", 1.0),
    ("behaviour.value.v_q", 0.5),
    ("behaviour.value.v_h", 4.0),
    ("behaviour.value.c_tau", 0.05),
    ("behaviour.choice.beta", 2.0),
    ("behaviour.choice.position_exponent", 0.8),
    ("behaviour.choice.u0", 3.0),
    ("behaviour.choice.phi_f", 1.0),
    ("behaviour.choice.scan_time", 8.0),
    ("behaviour.watch.mu", -2.2),
    ("behaviour.watch.alpha_a", 0.5),
    ("behaviour.watch.alpha_w", 0.5),
    ("behaviour.watch.sigma", 0.8),
    ("behaviour.continuation.c0", 0.5),
    ("behaviour.continuation.c_a", 0.6),
    ("behaviour.continuation.c_psi", 0.01),
    ("behaviour.continuation.c_f", 2.0),
    ("behaviour.continuation.p_leave_no_click", 0.1),
    ("behaviour.topic.eta", 0.02),
    ("behaviour.topic.relax", 3 * DAY),
    ("behaviour.appetite.eta_up", 0.01),
    ("behaviour.appetite.eta_down", 0.009),
    ("behaviour.appetite.relax", 10 * DAY),
    ("behaviour.satisfaction.gamma", 0.8),
    ("behaviour.satisfaction.noise", 0.1),
    ("behaviour.satisfaction.relax", 1 * DAY),
    ("behaviour.satisfaction.kappa", 0.4),
    ("behaviour.habit.relax", 12 * HOUR),
    ("behaviour.returns.base_rate", 1.5 / DAY),
    ("behaviour.returns.cycle_amplitude", 0.5),
    ("behaviour.returns.cycle_peak", 20 * HOUR),
    ("behaviour.returns.b_w", 0.5),
    ("behaviour.returns.alpha_impulse", 0.04 / HOUR),
    ("behaviour.returns.tau_impulse", 3 * HOUR),
    ("behaviour.returns.alpha_value", 0.01 / DAY),
    ("behaviour.returns.tau_value", 14 * DAY),
    ("behaviour.churn.ema_weight", 0.2),
    ("behaviour.churn.initial", 0.6),
    ("behaviour.churn.zeta0", -7.0),
    ("behaviour.churn.zeta1", 4.0),
    ("behaviour.churn.u_out", 0.5),
    ("behaviour.survey.probability", 0.05),
    ("recommender.slate_size", 10),
    ("recommender.n_candidates", 200),
    ("recommender.retrain_interval", 1 * DAY),
]


def _get(model: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        model = getattr(model, part)
    return model


@pytest.mark.parametrize(("path", "expected"), DESIGN_DEFAULTS, ids=[p for p, _ in DESIGN_DEFAULTS])
def test_defaults_equal_design_starting_values(path, expected):
    value = _get(scenario_from_dict(minimal()), path)
    if isinstance(expected, str):
        assert value == expected
    else:
        assert value == pytest.approx(expected, rel=1e-12)


def test_design_ratchet_is_asymmetric_by_default():
    app = scenario_from_dict(minimal()).behaviour.appetite
    assert app.eta_up > app.eta_down > 0


def test_durations_and_rates_in_a_scenario_become_seconds():
    sc = scenario_from_dict(
        minimal(
            horizon="36h",
            warmup=0,
            catalog={"upload_rate": "6/h", "length": {"median": "5m", "min": "10s", "max": "2h"}},
            behaviour={"returns": {"base_rate": "2/d", "tau_impulse": "90m"}},
        )
    )
    assert sc.horizon == 36 * HOUR
    assert sc.warmup == 0.0
    assert sc.catalog.upload_rate == pytest.approx(6 / HOUR)
    length = sc.catalog.length
    assert (length.min, length.median, length.max) == (10, 300, 7200)
    assert sc.behaviour.returns.base_rate == pytest.approx(2 / DAY)
    assert sc.behaviour.returns.tau_impulse == 90 * MINUTE


# ============================================================================ validation errors
@pytest.mark.parametrize(
    ("data", "path", "suggestion"),
    [
        ({"polices": ["random"]}, "polices", "policies"),
        ({"population": {"n_userz": 5}}, "population.n_userz", "n_users"),
        ({"catalog": {"quality": {"slop": 1}}}, "catalog.quality.slop", "slope"),
        ({"behaviour": {"allure": {"wr": 2}}}, "behaviour.allure.wr", "w_r"),
        ({"behaviour": {"apetite": {}}}, "behaviour.apetite", "appetite"),
        ({"outputs": {"metric_interval": "1d"}}, "outputs.metric_interval", "metrics_interval"),
    ],
)
def test_unknown_keys_are_rejected_with_a_suggestion(data, path, suggestion):
    base = minimal()
    base.update(data)
    problems = dict(problems_of(base))
    assert path in problems
    assert f"did you mean {suggestion!r}" in problems[path]


def test_unknown_key_inside_a_policy_is_rejected():
    problems = dict(problems_of(minimal(policies=[{"type": "random", "parms": {}}])))
    assert "did you mean 'params'" in problems["policies.0.parms"]


def test_scenario_error_names_source_and_every_problem():
    data = minimal(population={"n_users": "lots"}, catalog={"n_items": -3})
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data, source="my/file.yaml")
    err = info.value
    assert err.source == "my/file.yaml"
    assert [p for p, _ in err.problems] == ["population.n_users", "catalog.n_items"]
    text = str(err)
    assert text.startswith("my/file.yaml")
    assert "population.n_users" in text and "catalog.n_items" in text


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        (minimal(horizon=0), "horizon", "positive"),
        (minimal(horizon="-1d"), "horizon", "duration"),
        (minimal(horizon=True), "horizon", "duration"),
        (minimal(seed=-1), "seed", "greater than or equal"),
        (minimal(replications=0), "replications", "greater than or equal"),
        (minimal(engine="fast"), "engine", "reference"),
        (minimal(name="a b"), "name", "pattern"),
        (minimal(population=5), "population", "dictionary"),
        (
            minimal(population={"vulnerable_share": 1.5}),
            "population.vulnerable_share",
            "less than or equal to 1",
        ),
        (minimal(catalog={"extremeness": [1, 2, 3]}), "catalog.extremeness", "2 items"),
        (minimal(catalog={"clickbait": [0, 2]}), "catalog.clickbait.0", "greater than 0"),
        (minimal(catalog={"length": {"min": "1h"}}), "catalog.length", "min <= median <= max"),
        (
            minimal(behaviour={"returns": {"base_rate": "1.5/day"}}),
            "behaviour.returns.base_rate",
            "rate",
        ),
        (
            minimal(behaviour={"returns": {"cycle_amplitude": 1}}),
            "behaviour.returns.cycle_amplitude",
            "less than 1",
        ),
        (minimal(recommender={"n_candidates": 5}), "recommender", "slate_size"),
        (minimal(catalog={"n_items": 10}), "", "n_candidates"),
        (minimal(warmup_policy="engagement_oracle"), "warmup_policy", "oracle"),
        (minimal(warmup_policy="nope"), "warmup_policy", "unknown policy"),
        (minimal(outputs={"events_chunk_rows": 10}), "outputs.events_chunk_rows", "1000"),
        (minimal(policies=[]), "policies", "at least 1"),
        (minimal(policies="random"), "policies", "list"),
        ({"policies": ["random"]}, "name", "missing"),
        ({"name": "t"}, "policies", "missing"),
    ],
)
def test_invalid_values_name_their_field(data, path, fragment):
    problems = dict(problems_of(data))
    assert path in problems, problems
    assert fragment in problems[path]


@pytest.mark.parametrize("data", [[1, 2], "name: t", None, 3])
def test_scenario_must_be_a_mapping(data):
    assert paths_of(data) == [""]


@pytest.mark.parametrize(
    "override",
    [
        {"behaviour": {"returns": {"tau_impulse": 0}}},
        {"behaviour": {"returns": {"tau_value": 0}}},
        {"behaviour": {"habit": {"relax": 0}}},
        {"outputs": {"metrics_interval": 0}},
    ],
    ids=["tau_impulse", "tau_value", "habit.relax", "metrics_interval"],
)
def test_zero_time_constants_are_rejected(override):
    try:
        scenario_from_dict(minimal(**override))
    except ScenarioError:
        return
    raise AssertionError(f"{override} was accepted")


# ============================================================================ policy specs
def test_policy_shorthand_forms():
    sc = scenario_from_dict(
        minimal(
            policies=[
                "random",
                {"type": "chronological"},
                {"name": "popularity", "params": {"half_life": "2d"}},
                {"name": "fast_pop", "type": "popularity", "params": {"half_life": "6h"}},
            ]
        )
    )
    got = [(p.name, p.type, p.params) for p in sc.policies]
    assert got == [
        ("random", "random", {}),
        ("chronological", "chronological", {}),
        ("popularity", "popularity", {"half_life": "2d"}),
        ("fast_pop", "popularity", {"half_life": "6h"}),
    ]


def test_policy_spec_standalone_shorthand():
    assert PolicySpec.model_validate("random") == PolicySpec(name="random", type="random")


def test_module_class_policy_with_a_name_validates():
    spec = {"name": "mine", "type": "recsim.policies.builtin:RandomPolicy"}
    sc = scenario_from_dict(minimal(policies=[spec]))
    assert sc.policies[0].name == "mine"
    assert sc.policies[0].type == "recsim.policies.builtin:RandomPolicy"


@pytest.mark.parametrize(
    "spec",
    ["recsim.policies.builtin:RandomPolicy", {"type": "recsim.policies.builtin:RandomPolicy"}],
    ids=["string", "type-only"],
)
def test_module_class_policy_shorthand_validates(spec):
    scenario_from_dict(minimal(policies=[spec]))


@pytest.mark.parametrize(
    "policies",
    [
        ["random", "random"],
        ["random", {"name": "random", "type": "chronological"}],
        [{"type": "popularity"}, {"name": "popularity", "params": {"half_life": "2h"}}],
    ],
)
def test_duplicate_policy_names_are_rejected(policies):
    problems = dict(problems_of(minimal(policies=policies)))
    assert "repeated" in problems["policies"]


def test_same_type_twice_under_different_names_is_fine():
    sc = scenario_from_dict(
        minimal(policies=[{"name": "a", "type": "popularity"}, {"name": "b", "type": "popularity"}])
    )
    assert [p.name for p in sc.policies] == ["a", "b"]


@pytest.mark.parametrize(
    ("spec", "path", "fragment"),
    [
        ("foo", "policies.1.type", "unknown policy 'foo'"),
        ({"name": "m", "type": "no_such_module_xyz:P"}, "policies.1.type", "cannot import module"),
        ({"name": "m", "type": "recsim.policies.builtin:Nope"}, "policies.1.type", "no attribute"),
        ({"name": "m", "type": "recsim.config:Scenario"}, "policies.1.type", "neither a recsim Policy subclass nor a function"),
        (
            {"type": "popularity", "params": {"half_lif": "2d"}},
            "policies.1.params.half_lif",
            "half_life",
        ),
        (
            {"type": "popularity", "params": {"half_life": "soon"}},
            "policies.1.params.half_life",
            "duration",
        ),
        ({"type": "random", "params": {"x": 1}}, "policies.1.params.x", "unknown parameter"),
    ],
)
def test_bad_policies_name_the_field(spec, path, fragment):
    problems = dict(problems_of(minimal(policies=["chronological", spec])))
    assert path in problems, problems
    assert fragment in problems[path]


# ============================================================================ --set overrides
def test_overrides_nested_keys_and_yaml_values():
    data = {"name": "t", "policies": [{"type": "popularity"}], "population": {"n_users": 3}}
    out = apply_overrides(
        data,
        [
            "population.n_users=42",
            "population.vulnerable_share=0.25",
            "catalog.length.median=5m",
            "outputs.log_impressions=false",
            "catalog.extremeness=[2, 3]",
            "description=null",
            "name= spaced ",
            "policies.0.params.half_life=2d",
            "warmup=",
        ],
        "s.yaml",
    )
    assert out["population"] == {"n_users": 42, "vulnerable_share": 0.25}
    assert out["catalog"] == {"length": {"median": "5m"}, "extremeness": [2, 3]}
    assert out["outputs"] == {"log_impressions": False}
    assert out["description"] is None
    assert out["name"] == "spaced"
    assert out["policies"] == [{"type": "popularity", "params": {"half_life": "2d"}}]
    assert out["warmup"] == ""
    # the input is left alone
    assert data == {"name": "t", "policies": [{"type": "popularity"}], "population": {"n_users": 3}}


def test_override_replaces_a_whole_list_item():
    out = apply_overrides({"policies": ["random", "chronological"]}, ["policies.1=popularity"], "s")
    assert out["policies"] == ["random", "popularity"]


@pytest.mark.parametrize(
    ("override", "path", "fragment"),
    [
        ("population.n_users", "population.n_users", "dotted.key=value"),
        ("policies.5.name=x", "policies.5", "no list item"),
        ("policies.first.name=x", "policies.first", "no list item"),
        ("name.x=1", "name", "not a mapping"),
    ],
)
def test_bad_overrides_raise_scenario_errors(override, path, fragment):
    """(A bare-name policy item is expanded instead: see the test below.)"""
    data = {"name": "t", "policies": ["random"]}
    with pytest.raises(ScenarioError) as info:
        apply_overrides(data, [override], "s.yaml")
    assert info.value.source == "s.yaml"
    ((got_path, message),) = info.value.problems
    assert got_path == path
    assert fragment in message


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_scenario_applies_overrides_and_seed(tmp_path):
    path = write(
        tmp_path,
        "name: t\nseed: 1\npolicies:\n  - type: popularity\n    params: {half_life: 6h}\n",
    )
    sc = load_scenario(
        path,
        ["policies.0.params.half_life=2d", "population.n_users=7", "horizon=36h"],
        seed=99,
    )
    assert sc.seed == 99
    assert sc.population.n_users == 7
    assert sc.horizon == 36 * HOUR
    assert sc.policies[0].params == {"half_life": "2d"}
    from recsim.policies.registry import build_policy

    assert build_policy(sc.policies[0]).params.half_life == 2 * DAY


def test_override_to_an_invalid_value_is_reported_at_its_path(tmp_path):
    path = write(tmp_path, "name: t\npolicies: [random]\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, ["population.n_userz=5", "catalog.n_items=-1"])
    problems = dict(info.value.problems)
    assert info.value.source == str(path)
    assert "did you mean 'n_users'" in problems["population.n_userz"]
    assert "catalog.n_items" in problems


# ============================================================================ reading files
@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: t\npolicies:\n  - random\n population: {n_users: 3}\n", "line 4"),
        ("name: [t\n", "malformed YAML"),
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("- random\n- chronological\n", "mapping"),
        ("just text\n", "mapping"),
    ],
)
def test_unreadable_files_are_scenario_errors(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.source == str(path)
    assert fragment in str(info.value)


def test_missing_file_directory_and_binary(tmp_path):
    for target, fragment in [
        (tmp_path / "nope.yaml", "not found"),
        (tmp_path, "directory"),
    ]:
        with pytest.raises(ScenarioError, match=fragment):
            read_scenario_data(target)
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"name: \xff\xfe\x00\n")
    with pytest.raises(ScenarioError, match="UTF-8"):
        read_scenario_data(binary)


def test_baseline_scenario_validates():
    sc = load_scenario(SCENARIOS / "baseline.yaml")
    assert sc.name == "baseline"
    assert [p.name for p in sc.policies] == [
        "random", "chronological", "engagement_oracle", "wellbeing_oracle"
    ]


# ============================================================================ dump
def test_dump_is_plain_yaml_data_with_readable_units():
    sc = load_scenario(SCENARIOS / "baseline.yaml")
    dumped = sc.dump()
    assert yaml.safe_load(yaml.safe_dump(dumped)) == dumped
    assert json.loads(json.dumps(dumped)) == dumped
    assert parse_duration(dumped["horizon"]) == 14 * DAY
    assert dumped["behaviour"]["habit"]["relax"] == "12h"
    assert dumped["behaviour"]["returns"]["base_rate"] == "1.5/d"
    assert dumped["policies"][0] == {"name": "random", "type": "random", "params": {}}


def test_dump_round_trips_to_within_display_precision():
    sc = load_scenario(SCENARIOS / "baseline.yaml")
    again = scenario_from_dict(sc.dump())
    assert again.dump() == sc.dump()
    assert again.behaviour.returns.alpha_impulse == pytest.approx(
        sc.behaviour.returns.alpha_impulse, rel=1e-9
    )


ROUND_TRIP_CASES = {
    "baseline": lambda: read_scenario_data(SCENARIOS / "baseline.yaml"),
    "odd-values": lambda: minimal(
        horizon=1234567.5,
        warmup="1.5h",
        catalog={"upload_rate": 1 / 7},
        behaviour={"returns": {"base_rate": "1/h"}},
        policies=["random", {"type": "popularity", "params": {"half_life": "3h"}}],
    ),
}


@pytest.mark.parametrize("case", list(ROUND_TRIP_CASES))
def test_dump_round_trips_to_an_equal_model(case):
    sc = scenario_from_dict(ROUND_TRIP_CASES[case]())
    again = scenario_from_dict(sc.dump(), source="dump")
    assert again == sc


# ============================================================================ JSON Schema
def test_json_schema_is_json_with_the_top_level_properties():
    schema = scenario_json_schema()
    again = json.loads(json.dumps(schema))
    assert again == schema
    assert again["type"] == "object"
    assert again["additionalProperties"] is False
    assert set(again["properties"]) == set(Scenario.model_fields)
    assert set(again["required"]) == {"name", "policies"}
    sections = ("PopulationConfig", "CatalogConfig", "AllureConfig", "ReturnsConfig")
    for section in sections:
        assert again["$defs"][section]["additionalProperties"] is False
    # a policy is a name string or a mapping with no unknown keys
    string, mapping = again["$defs"]["PolicySpec"]["anyOf"]
    assert string["type"] == "string"
    assert mapping["additionalProperties"] is False


def test_json_schema_describes_durations_and_rates():
    schema = scenario_json_schema()
    horizon = schema["properties"]["horizon"]
    base_rate = schema["$defs"]["ReturnsConfig"]["properties"]["base_rate"]
    cases = (
        (horizon, ["14d", "45s", "30m", "1.5h", "1e3s", "90"], ["3 days", "14 d/", "1.5/d", "d"]),
        (base_rate, ["1.5/d", "0.04/h", "1e-5/s", "2 / m"], ["1.5", "1.5d", "/d", "per day"]),
    )
    for node, good, bad in cases:
        kinds = {option["type"]: option for option in node["anyOf"]}
        pattern = re.compile(kinds["string"]["pattern"])
        assert all(pattern.search(text) for text in good), good
        assert not any(pattern.search(text) for text in bad), bad
        assert kinds["number"]["minimum"] == 0


def test_committed_schema_file_is_current():
    committed = json.loads((SCENARIOS / "scenario.schema.json").read_text(encoding="utf-8"))
    assert committed == scenario_json_schema(), (
        "scenarios/scenario.schema.json is stale; regenerate it with "
        "`recsim schema > scenarios/scenario.schema.json`"
    )


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def test_json_schema_accepts_policy_shorthands():
    schema = scenario_json_schema()
    items = _resolve(schema, schema["properties"]["policies"]["items"])
    options = [_resolve(schema, o) for o in items.get("anyOf", items.get("oneOf", [items]))]
    assert any(o.get("type") == "string" for o in options), "`- random` is not allowed"
    objects = [o for o in options if o.get("type") == "object"]
    assert any("name" not in o.get("required", []) for o in objects), "`{type: x}` is not allowed"


# ============================================================================ scenarios/README.md
def _sections() -> dict[str, type[BaseModel]]:
    """Every config model by its dotted path in a scenario ('' is the top level)."""
    found: dict[str, type[BaseModel]] = {}

    def walk(model: type[BaseModel], prefix: str) -> None:
        found[prefix] = model
        for name, field in model.model_fields.items():
            for candidate in (field.annotation, *typing.get_args(field.annotation)):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    # every role of the user model takes the same kind of entry: one table
                    sub = f"{prefix}.<role>" if model is UserModelConfig else (f"{prefix}.{name}" if prefix else name)
                    walk(candidate, sub)

    walk(Scenario, "")
    return found


def _readme_rows() -> dict[str, dict[str, list[str]]]:
    """README section path -> {key: table cells} from the table rows under each section heading."""
    text = (SCENARIOS / "README.md").read_text(encoding="utf-8")
    tables: dict[str, dict[str, list[str]]] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            match = re.search(r"`([a-z_.<>]+)`", line)
            current = "" if "Top level" in line else (match.group(1) if match else None)
            continue
        if current is None or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        key = re.fullmatch(r"`([a-z0-9_]+)`", cells[0])
        if key and len(cells) >= 4:
            tables.setdefault(current, {})[key.group(1)] = cells
    return tables


def _readme_tables() -> dict[str, dict[str, str]]:
    """README section path -> {key: default cell}."""
    return {
        path: {key: cells[1] for key, cells in rows.items()}
        for path, rows in _readme_rows().items()
    }


def test_sections_walk_finds_every_model():
    # guards the README test below: the walk must reach the nested models
    expected = {"", "catalog.quality", "catalog.length", "behaviour.survey", "policies", "outputs"}
    assert expected <= set(_sections())
    assert {"user_model", "user_model.<role>"} <= set(_sections())
    assert len(_sections()) == 26


def test_readme_documents_every_field_of_every_model():
    tables = _readme_tables()
    missing = [
        f"{path}.{name}" if path else name
        for path, model in _sections().items()
        for name in model.model_fields
        if name not in tables.get(path, {})
    ]
    assert not missing, f"scenarios/README.md lacks table rows for: {missing}"
    extra = [
        f"{path}.{key}"
        for path, rows in tables.items()
        for key in rows
        if path in _sections() and key not in _sections()[path].model_fields
    ]
    assert not extra, f"scenarios/README.md documents keys that do not exist: {extra}"


def test_readme_defaults_match_the_code():
    tables = _readme_tables()
    wrong = []
    for path, model in _sections().items():
        for name, field in model.model_fields.items():
            cell = tables.get(path, {}).get(name, "")
            where = f"{path}.{name}" if path else name
            if field.is_required():
                if "required" not in cell:
                    wrong.append(f"{where}: should say required, says {cell!r}")
                continue
            default = field.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                continue  # a section: its own table documents it
            shown = re.match(r"`([^`]*)`", cell)
            if not shown:
                wrong.append(f"{where}: default cell {cell!r} has no `value`")
                continue
            annotation = field.annotation
            if field.metadata:
                annotation = Annotated[(annotation, *field.metadata)]
            adapter = TypeAdapter(annotation)
            written = shown.group(1)
            value = adapter.validate_python(yaml.safe_load(written) if written else "")
            same = (
                value == pytest.approx(default, rel=1e-12)
                if isinstance(default, (float, tuple))
                else value == default
            )
            if not same:
                wrong.append(f"{where}: README says {shown.group(1)!r}, code has {default!r}")
    assert not wrong, "\n".join(wrong)


def test_readme_rows_have_units_and_meaning():
    empty = [
        f"{path}.{key}"
        for path, rows in _readme_rows().items()
        for key, cells in rows.items()
        if not (cells[2] and cells[3])
    ]
    assert not empty, f"README rows without units or meaning: {empty}"


def test_readme_explains_syntax_and_tools():
    text = (SCENARIOS / "README.md").read_text(encoding="utf-8")
    needles = ("--set", "recsim schema", "scenario.schema.json", "1.5/d", "14d", "module:Class")
    for needle in needles:
        assert needle in text


def test_override_inside_a_bare_name_policy_expands_it():
    out = apply_overrides({"name": "t", "policies": ["popularity"]}, ["policies.0.params.half_life=2d"], "s.yaml")
    assert out["policies"] == [{"name": "popularity", "type": "popularity", "params": {"half_life": "2d"}}]
    assert scenario_from_dict(out).policies[0].params == {"half_life": "2d"}
