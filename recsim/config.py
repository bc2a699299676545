"""Scenario files: pydantic models, YAML loading, ``--set`` overrides and clear errors.

Every model parameter (docs/model.md) is a field here with its default. Unknown keys are
rejected everywhere (``extra="forbid"``), so a misspelt key is an error, not a silent default.
Durations are stored in seconds and rates in events per second (see :mod:`recsim.units`).

Scenario files and ``--set`` values are read with YAML 1.2's rules for plain scalars
(:class:`ScenarioLoader`): only ``true``/``false`` are booleans (``yes``, ``no``, ``on``,
``off`` are text), ``010`` is ten (not octal eight), ``20:00`` is text (not 1200 in base 60)
and ``2024-01-01`` is text (not a date). Numeric fields never take a boolean.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import re
import sys
import types
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from .units import (
    _CLOCK_PATTERN,
    _DURATION,
    _RATE,
    format_duration,
    format_rate,
    parse_duration,
    parse_rate,
    parse_time_of_day,
)

__all__ = [
    "Scenario",
    "PolicySpec",
    "ScenarioError",
    "load_scenario",
    "scenario_from_dict",
    "apply_overrides",
    "set_path",
    "scenario_json_schema",
    "sampled_users",
    "ComponentSpec",
    "UserModelConfig",
    "ScenarioLoader",
    "load_yaml",
    "NoBoolNumbers",
    "ResourceEstimate",
    "estimate_resources",
]

_DURATION_PATTERN = _DURATION.pattern
_RATE_PATTERN = _RATE.pattern

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": _DURATION_PATTERN},
                {"type": "number", "minimum": 0},
            ],
            "description": "duration: '45s', '30m', '6h', '14d' or seconds",
        }
    ),
]


Rate = Annotated[
    float,
    BeforeValidator(parse_rate),
    PlainSerializer(format_rate, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": _RATE_PATTERN},
                {"type": "number", "minimum": 0},
            ],
            "description": "rate: '1.5/d', '0.04/h' or events per second",
        }
    ),
]
TimeOfDay = Annotated[
    float,
    BeforeValidator(parse_time_of_day),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": _CLOCK_PATTERN},
                {"type": "string", "pattern": _DURATION_PATTERN},
                {"type": "number", "minimum": 0},
            ],
            "description": "time of day: '20:00', or a duration after midnight ('20h') or seconds",
        }
    ),
]
TimeConstant = Annotated[Duration, Field(gt=0.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
BetaParams = Annotated[tuple[Positive, Positive], Field(description="Beta(a, b) shape parameters")]


# ----------------------------------------------------------------------------- YAML
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class ScenarioLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2's rules for plain scalars (what a scenario means is
    what it says): only ``true``/``false`` (any case style) are booleans — ``yes``, ``no``,
    ``on``, ``off``, ``y``, ``n`` are text; integers are decimal even with leading zeros
    (``010`` is 10, not octal 8), or ``0x``/``0b``; no base-60 numbers (``20:00`` is text, not
    1200) and no implicit dates (``2024-01-01`` is text).

    Every plain scalar it reads as something other than text, PyYAML's YAML 1.1 rules read as
    the same kind, so files written by ``yaml.safe_dump`` (run folders' ``scenario.yaml``)
    read back unchanged (hence ``1e2`` stays text: YAML 1.1 has no float without a dot).

    A key given twice in one mapping is an error (YAML forbids it; PyYAML keeps the last).
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class says so
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given at line {first + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


ScenarioLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ScenarioLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
ScenarioLoader.add_implicit_resolver(
    _INT,
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
ScenarioLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_int(loader: ScenarioLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits.startswith(("0x", "0X", "0b", "0B")):
        return sign * int(digits, 0)
    return sign * int(digits, 10)  # leading zeros are decimal (YAML 1.2): 010 is ten


ScenarioLoader.add_constructor(_INT, _construct_int)


def load_yaml(text: str) -> Any:
    """Parse YAML text as scenarios are read (:class:`ScenarioLoader`)."""
    return yaml.load(text, Loader=ScenarioLoader)  # a SafeLoader subclass: safe


#: plain scalars YAML 1.1 read as booleans and YAML 1.2 (recsim) reads as text
_YAML11_BOOLEANS = {"yes", "no", "on", "off", "y", "n"}


# ----------------------------------------------------------------------------- models
def _numeric_annotation(annotation: Any) -> bool:
    """Whether a field's type is a number (int or float), possibly inside Optional, a list,
    a tuple or Annotated — a place where a boolean is meaningless."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _numeric_annotation(get_args(annotation)[0])
    if annotation in (int, float):
        return True
    if origin in (list, tuple):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return bool(args) and all(_numeric_annotation(a) for a in args)
    if origin in (Union, types.UnionType):  # a number in some branch, and no boolean anywhere
        args = get_args(annotation)
        return bool not in args and any(_numeric_annotation(a) for a in args)
    return False


class _BoolGiven:
    """Stands for a boolean given where a number is expected, so that validation fails there
    (pydantic would take ``true`` as 1) while the other fields are still checked."""

    def __init__(self, value: bool):
        self.value = value

    def __repr__(self) -> str:
        return "true" if self.value else "false"


class NoBoolNumbers(BaseModel):
    """Base model whose numeric fields (int and float, also in lists and tuples) refuse
    booleans: pydantic would take ``true`` as 1 (``replications: true`` running one
    replication). Policies' and components' ``Params`` can derive from it too."""

    @model_validator(mode="before")
    @classmethod
    def _no_bools_for_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = None
        for name, value in data.items():
            if isinstance(value, bool):
                marked: Any = _BoolGiven(value)
            elif isinstance(value, (list, tuple)) and any(isinstance(v, bool) for v in value):
                marked = [_BoolGiven(v) if isinstance(v, bool) else v for v in value]
            else:
                continue
            field = cls.model_fields.get(name) if isinstance(name, str) else None
            parsed = field is not None and any(isinstance(m, BeforeValidator) for m in field.metadata)
            if field is not None and not parsed and _numeric_annotation(field.annotation):
                # (a duration, rate or time of day has its own parser, which says what to write)
                out = dict(data) if out is None else out
                out[name] = marked
        return data if out is None else out


class _Model(NoBoolNumbers):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections_are_defaults(cls, data: Any) -> Any:
        """A section written with nothing under it (``population:``, read as null) takes its
        defaults, as if it were left out."""
        if not isinstance(data, dict):
            return data
        empty = [name for name, value in data.items() if value is None and isinstance(name, str)
                 and name in cls.model_fields and isinstance(cls.model_fields[name].annotation, type)
                 and issubclass(cls.model_fields[name].annotation, BaseModel)]
        return {k: v for k, v in data.items() if k not in empty} if empty else data


# ----------------------------------------------------------------------------- catalog
class QualityConfig(_Model):
    """q = clip(base - slope·(e - E[e]) + N(0, noise²), min, max): weakly anti-correlated with e."""

    base: float = 0.5
    slope: float = 0.6
    noise: NonNegative = 0.2
    min: float = Field(0.0, description="lowest quality (clip)")
    max: float = Field(1.0, description="highest quality (clip)")

    @model_validator(mode="after")
    def _ordered(self) -> QualityConfig:
        if self.min > self.max:
            raise ValueError("quality needs min <= max")
        return self


class DiscreteConfig(_Model):
    """A discrete distribution: ``values`` drawn with probabilities proportional to ``weights``."""

    values: list[Annotated[float, Field(ge=0.0, le=1.0)]] = Field(min_length=1)
    weights: Optional[list[NonNegative]] = Field(None, description="default: equal weights")

    @model_validator(mode="after")
    def _matching(self) -> DiscreteConfig:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError("give one weight per value")
            if sum(self.weights) <= 0:
                raise ValueError("the weights must not all be 0")
        return self

    def probabilities(self) -> list[float]:
        weights = self.weights or [1.0] * len(self.values)
        total = sum(weights)
        return [w / total for w in weights]

    def mean(self) -> float:
        return sum(v * p for v, p in zip(self.values, self.probabilities()))


def _unit_kind(value: Any) -> str:
    return "discrete" if isinstance(value, (dict, DiscreteConfig)) else "beta"


#: tags of the union below: dropped from error paths (they name no key of the file)
_UNION_TAGS = ("beta", "discrete")

UnitDistribution = Annotated[
    Union[Annotated[BetaParams, Tag("beta")], Annotated[DiscreteConfig, Tag("discrete")]],
    Discriminator(_unit_kind),
    Field(description="Beta(a, b) shape parameters, or {values: [...], weights: [...]}"),
]


def _cluster_keys(value: Any) -> Any:
    """The keys of a per-cluster mapping (``catalog.extremeness_by_cluster``,
    ``population.appetite_by_cluster``) as cluster indices: integers, or integers written as
    text (``--set`` paths and JSON give them so); anything else is refused, saying what to
    write. Whether an index names one of ``catalog.n_clusters`` clusters is checked with the
    whole scenario (:func:`_check_cluster_indices`)."""
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(key, str) and re.fullmatch(r"\s*[-+]?[0-9]+\s*", key):
            index = int(key)
        elif isinstance(key, int) and not isinstance(key, bool):
            index = key
        else:
            shown = f"{str(key).lower()} (a boolean)" if isinstance(key, bool) else repr(key)
            raise ValueError(f"keys must be cluster indices (integers 0, 1, …, below catalog.n_clusters); got {shown}")
        if index in out:
            raise ValueError(f"cluster {index} is given twice")
        if isinstance(item, (list, tuple)) and any(isinstance(v, bool) for v in item):
            item = [_BoolGiven(v) if isinstance(v, bool) else v for v in item]  # Beta(true, 3) is no Beta
        out[index] = item
    return out


def _check_cluster_indices(mapping: Optional[dict[int, Any]], n_clusters: int, loc: tuple) -> None:
    """Raise :class:`PolicyParamError` at ``loc`` if a key of ``mapping`` is not a cluster
    index in ``0..n_clusters - 1``."""
    bad = sorted(key for key in mapping or {} if not 0 <= key < n_clusters)
    if bad:
        raise PolicyParamError(loc, (
            f"cluster indices must be in 0..{n_clusters - 1} (catalog.n_clusters is {n_clusters}); "
            f"got {', '.join(map(str, bad))}"))


class LengthConfig(_Model):
    """Item length L: log-normal with this median and log-sd, clipped to [min, max]."""

    median: Duration = 240.0
    log_sd: NonNegative = 0.7
    min: Duration = 15.0
    max: Duration = 3 * 3600.0

    @model_validator(mode="after")
    def _ordered(self) -> LengthConfig:
        if not self.min <= self.median <= self.max:
            raise ValueError("length needs min <= median <= max")
        return self


class CreatorsConfig(_Model):
    """Creators who adapt what they upload (docs/model.md §2.1): every ``period`` of the horizon
    each creator's offsets to extremeness, quality and clickbait move by ``rule`` toward the
    attributes of their items that earned the most ``signal``, within ``±max_offset``; items
    uploaded after that are made with the new offsets. The number of creators is
    ``catalog.n_creators``."""

    split: Literal["uniform", "zipf"] = Field(
        "uniform", description="how uploads are split among creators: equally, or Zipf (share ∝ rank^-zipf_exponent)")
    zipf_exponent: NonNegative = Field(1.0, description="s of the Zipf split (0 = uniform)")
    rule: str = Field("imitate", description="imitate, static (never adapt), or \"module:Class\" (a CreatorRule)")
    params: dict[str, Any] = Field(default_factory=dict, description="the rule's parameters")
    period: TimeConstant = Field(86400.0, description="how often creators adapt (from t = 0)")
    signal: Literal["impressions", "watch_time"] = Field(
        "impressions", description="what creators learn from: each item's impressions, or its seconds watched, in the period")
    max_offset: NonNegative = Field(0.3, description="bound of each offset (attribute units)")
    adapt: list[Literal["extremeness", "quality", "clickbait"]] = Field(
        default_factory=lambda: ["extremeness", "quality", "clickbait"], min_length=1,
        description="the attributes creators adapt (the others keep offset 0; rule static adapts none)")


class CatalogConfig(_Model):
    n_topics: int = Field(20, ge=1, description="K, the number of topics")
    n_clusters: int = Field(5, ge=1, description="topic clusters items and users gather around")
    cluster_concentration: Positive = Field(0.3, description="Dirichlet concentration of centers")
    item_noise: NonNegative = Field(0.05, description="per-topic noise of an item around its center")
    n_items: int = Field(50_000, ge=1, description="items already uploaded when the run starts")
    backlog: Duration = Field(60 * 86400.0, description="the initial items span this much history")
    upload_rate: Rate = Field(1500 / 86400, description="Poisson rate of new uploads")
    n_creators: int = Field(1000, ge=1)
    extremeness: UnitDistribution = (1.2, 6.0)
    extremeness_by_cluster: Annotated[Optional[dict[int, UnitDistribution]], BeforeValidator(_cluster_keys)] = Field(
        None,
        description="cluster index -> the distribution of extremeness of that cluster's items (Beta(a, b) or "
        "{values, weights}); clusters not named use `extremeness` (null = every cluster does)")
    quality: QualityConfig = QualityConfig()
    clickbait: UnitDistribution = (2.0, 5.0)
    length: LengthConfig = LengthConfig()
    classifier_noise: NonNegative = Field(0.1, description="sd of the extremeness classifier score")
    topic_noise: NonNegative = Field(0.1, description="sd of the observable (noisy) topic vector")
    creators: Optional[CreatorsConfig] = Field(
        None, description="creators who adapt their uploads to what the ranker rewards (null = none: creator is a label)")

    @model_validator(mode="after")
    def _known_clusters(self) -> CatalogConfig:
        _check_cluster_indices(self.extremeness_by_cluster, self.n_clusters, ("catalog", "extremeness_by_cluster"))
        return self


# ----------------------------------------------------------------------------- population
class ScriptedGroup(_Model):
    """A group of scripted users (sock puppets) added after the modelled users: they follow
    ``rule`` (recsim.users.scripted) instead of the behaviour model, are served by the same
    policy, and never churn."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$", description="the group's label in every output")
    n_users: int = Field(ge=1, description="scripted users in the group")
    rule: str = Field(description="top_item, most_extreme, replay, or \"module:Class\" (a ScriptedRule)")
    params: dict[str, Any] = Field(default_factory=dict, description="the rule's parameters")


class Takeover(_Model):
    """Counterfactual bots: after ``after_watches`` watches, the first ``users`` modelled users
    follow ``rule`` instead of the behaviour model (the bot arm of a counterfactual-bot audit,
    which ``recsim audit`` pairs with the same run without it under common random numbers)."""

    users: int = Field(ge=1, description="the first `users` modelled users (ids are i.i.d. draws: a random sample)")
    after_watches: int = Field(ge=0, description="the user's own watches in the horizon (t ≥ 0) before the bot takes over")
    rule: str = Field("top_item", description="what the bot does: a scripted rule (see `scripted`; a `replay` list starts at the fork)")
    params: dict[str, Any] = Field(default_factory=dict, description="the rule's parameters")


class PopulationConfig(_Model):
    n_users: int = Field(500, ge=1, description="modelled users (the behaviour model's)")
    scripted: list[ScriptedGroup] = Field(
        default_factory=list,
        description="groups of scripted users (sock puppets), ids after the modelled users'; "
        "figures of modelled users exclude them",
    )
    takeover: Optional[Takeover] = Field(
        None, description="counterfactual bots taking over modelled users after some watches (null = none)"
    )
    home_noise: NonNegative = Field(0.05, description="per-topic noise of θ₀ around the home cluster")
    appetite: BetaParams = Field((3.0, 11.0), description="initial appetite a₀ ~ Beta")
    appetite_by_cluster: Annotated[Optional[dict[int, BetaParams]], BeforeValidator(_cluster_keys)] = Field(
        None,
        description="cluster index -> Beta(a, b) of the initial appetite a₀ of users whose home is that cluster; "
        "users of clusters not named use `appetite` (null = everyone does)")
    vulnerable_share: Probability = 0.1
    vulnerable_susceptibility: Positive = 4.0
    susceptibility_log_sd: NonNegative = Field(0.2, description="others: log-normal around 1")
    initial_satisfaction: float = 0.0


# ----------------------------------------------------------------------------- behaviour
class AllureConfig(_Model):
    """A = w_r·r + w_e·g(e; a) + w_c·b with g(e; a) = exp(-(e - a - δ)² / (2ω²))."""

    w_r: float = 3.0
    #: calibrated (issue 14) to Milli et al.'s field experiment: 0.75 puts engagement ranking's
    #: amplification of extremeness at about 0.5 SD (published 0.24–0.47); the design's 1.5 gave 1.0
    w_e: float = 0.75
    w_c: float = 0.5
    delta: float = 0.12
    omega: Positive = 0.1


class ValueConfig(_Model):
    """V = v_r·r + v_q·q - v_h·e² - c_tau·(watch time in minutes)."""

    v_r: float = 1.0
    v_q: float = 0.5
    v_h: float = 4.0
    c_tau: float = Field(0.05, description="value cost per minute watched")


class ChoiceConfig(_Model):
    """Multinomial logit over the slate with an outside option U₀ = u0 + phi_f·F."""

    beta: Positive = 2.0
    position_exponent: NonNegative = 0.8
    u0: float = 3.0
    phi_f: float = Field(1.0, description="outside-option utility per hour of fatigue")
    scan_time: Annotated[Duration, Field(gt=0.0)] = Field(
        8.0, description="time to look over a slate (> 0: every slate takes time)")


class WatchConfig(_Model):
    """log T ~ N(log L + mu + alpha_a·A + alpha_w·(W - 1/2), sigma²); watch time τ = min(L, T)."""

    mu: float = -2.2
    alpha_a: float = 0.5
    alpha_w: float = 0.5
    sigma: NonNegative = 0.8


class ContinuationConfig(_Model):
    """P(continue after an item) = sigmoid(c0 + c_a·A + c_psi·ψ - c_f·F)."""

    c0: float = 0.5
    c_a: float = 0.6
    c_psi: float = 0.01
    c_f: float = Field(2.0, description="per hour of fatigue")
    p_leave_no_click: Probability = 0.1


class TopicDynamicsConfig(_Model):
    eta: NonNegative = Field(0.02, description="η_θ, topic drift step")
    relax: TimeConstant = Field(3 * 86400.0, description="τ_θ, relaxation toward θ₀ between sessions")


class AppetiteDynamicsConfig(_Model):
    eta_up: NonNegative = 0.01
    eta_down: NonNegative = 0.009
    relax: TimeConstant = Field(10 * 86400.0, description="τ_a, relaxation toward a₀ between sessions")


class SatisfactionConfig(_Model):
    gamma: Probability = Field(0.8, description="γ_S, carry-over of S per item")
    noise: NonNegative = Field(0.1, description="σ_S of the per-item noise ε")
    relax: TimeConstant = Field(86400.0, description="τ_S, decay of S toward 0 between sessions")
    kappa: Positive = Field(0.4, description="W = sigmoid(κ·S)")


class HabitConfig(_Model):
    relax: TimeConstant = Field(12 * 3600.0, description="τ_ψ, habit decay time")


class ReturnsConfig(_Model):
    """λ(t) = λ₀·d(t)·exp(b_w·(W-½)) + Σ_s [α₁·[Ā_s]₊·e^{-(t-t_s)/τ₁} + α₂·[V̄_s]₊·e^{-(t-t_s)/τ₂}]."""

    base_rate: Rate = Field(1.5 / 86400, description="λ₀")
    cycle_amplitude: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.5
    cycle_peak: TimeOfDay = Field(
        20 * 3600.0, description="time of day of the daily peak: '20:00', or '20h' after midnight"
    )
    b_w: float = 0.5
    alpha_impulse: Rate = Field(0.04 / 3600, description="α₁ per unit session-mean allure")
    tau_impulse: TimeConstant = Field(3 * 3600.0, description="τ₁")
    alpha_value: Rate = Field(0.01 / 86400, description="α₂ per unit positive session-mean value")
    tau_value: TimeConstant = Field(14 * 86400.0, description="τ₂")


class ChurnConfig(_Model):
    """At each would-be return, quit with probability sigmoid(zeta0 - zeta1·(Ū - u_out))."""

    ema_weight: Probability = 0.2
    initial: float = Field(0.6, description="starting value of the EMA Ū of session value")
    zeta0: float = -7.0
    zeta1: float = 4.0
    u_out: float = 0.5


class SurveyConfig(_Model):
    """Answer = round(clip(intercept + slope·V̄ + N(0, noise²), 1, 5)) with probability p."""

    probability: Probability = 0.05
    intercept: float = 2.5
    slope: float = 2.0
    noise: NonNegative = 0.7


class BehaviourConfig(_Model):
    allure: AllureConfig = AllureConfig()
    value: ValueConfig = ValueConfig()
    choice: ChoiceConfig = ChoiceConfig()
    watch: WatchConfig = WatchConfig()
    continuation: ContinuationConfig = ContinuationConfig()
    topic: TopicDynamicsConfig = TopicDynamicsConfig()
    appetite: AppetiteDynamicsConfig = AppetiteDynamicsConfig()
    satisfaction: SatisfactionConfig = SatisfactionConfig()
    habit: HabitConfig = HabitConfig()
    returns: ReturnsConfig = ReturnsConfig()
    churn: ChurnConfig = ChurnConfig()
    survey: SurveyConfig = SurveyConfig()


# ----------------------------------------------------------------------------- recommender
class RecommenderConfig(_Model):
    slate_size: int = Field(10, ge=1)
    n_candidates: int = Field(200, ge=1, description="candidate pool drawn per request")
    candidate_window: Optional[Annotated[Duration, Field(gt=0.0)]] = Field(
        None,
        description="draw candidates only among items uploaded in this recent window (or the "
        "n_candidates most recent items, if fewer were), so the pool follows the catalog as it "
        "grows; null = among every item uploaded so far",
    )
    exclude_watched: bool = Field(
        True,
        description="leave the items a user has watched out of that user's candidate pools, as "
        "platforms do (false = any item can be served, and watched, again)",
    )
    retrain_interval: Duration = Field(
        86400.0, description="how often learned policies refit (0 = never)"
    )
    policy_time_limit: Optional[Annotated[Duration, Field(gt=0.0)]] = Field(
        None,
        description="wall-clock limit on each call of a policy (recommend, recommend_batch, fit, observe, "
        "update, reset): a call that takes longer stops the run with an error naming the policy, "
        "the task and the line it was running (null = no limit)",
    )

    @model_validator(mode="after")
    def _pool_holds_slate(self) -> RecommenderConfig:
        if self.n_candidates < self.slate_size:
            raise ValueError("n_candidates must be at least slate_size")
        return self


def _default_name(type_name: Any) -> Any:
    """The label of a policy given by type only: the built-in name, or for ``module:Class``
    the class name."""
    return type_name.rpartition(":")[2].rpartition(".")[2] if isinstance(type_name, str) else type_name


class PolicySpec(_Model):
    """A policy to compare: a built-in name or ``"module:Class"``, with its parameters."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9_.+-]+$",
        description="label used in outputs (letters, digits, _ . + -); defaults to the type",
    )
    type: str = Field(description="a built-in policy name or 'module:Class'")
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": _default_name(value), "type": value}
        if isinstance(value, dict) and "type" in value and "name" not in value:
            return {**value, "name": _default_name(value["type"])}
        if isinstance(value, dict) and "name" in value and "type" not in value:
            return {**value, "type": value["name"]}
        return value


def sampled_users(event_sample: float, n_users: int) -> int:
    """``ceil(event_sample × n_users)``, with the share read as the decimal it was written as
    (0.1 × 30 is 3 users, not the 4 that float rounding would give)."""
    return min(n_users, math.ceil(Fraction(repr(float(event_sample))) * n_users))


class OutputConfig(_Model):
    metrics_interval: TimeConstant = Field(86400.0, description="width of a metrics time bucket")
    log_impressions: bool = Field(True, description="log one row per slate position shown")
    extreme_threshold: Probability = Field(0.4, description="e above this counts as extreme")
    events_chunk_rows: int = Field(200_000, ge=1000, description="rows per Parquet row group")
    validity_panel: int = Field(
        50, ge=0, description="items per active user in each bucket's proxy-validity panel (0: off)"
    )
    event_sample: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description=(
            "share of users, in (0, 1], whose full event rows are written to the event log: the "
            "first ceil(event_sample * n_users) user ids, a random sample since users are drawn "
            "i.i.d.; the others count only in the aggregates (metrics and the users table always "
            "cover every user); retrain rows are always logged"
        ),
    )

    def sampled_users(self, n_users: int) -> int:
        """How many users have their events logged: ids ``0 .. sampled_users(n) - 1``."""
        return sampled_users(self.event_sample, n_users)


# ----------------------------------------------------------------------------- user model
class ComponentSpec(_Model):
    """A user-model component: a built-in name or ``"module:Class"``, with its parameters."""

    type: str = Field(description="a built-in component name or 'module:Class'")
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value


def _component(name: str, what: str) -> Any:
    return Field(default_factory=lambda: ComponentSpec(type=name), description=f"{what} (default: {name})")


class UserModelConfig(_Model):
    """Which component plays each part of the user model. The defaults are recsim's own
    model, whose parameters are the ``behaviour:`` (and ``population:``) sections; another
    component takes its ``params`` here. ``recsim components`` lists the built-ins."""

    sampler: ComponentSpec = _component("population", "initial hidden state")
    allure: ComponentSpec = _component("allure", "what pulls: per (user, item) terms")
    value: ComponentSpec = _component("value", "what helps: the hidden value of an item watched")
    choice: ComponentSpec = _component("logit", "choice over a slate")
    response: ComponentSpec = _component("lognormal", "watch time of a click")
    transition: ComponentSpec = _component("consumption", "state after watching an item")
    relaxation: ComponentSpec = _component("relax", "state after time away")
    session: ComponentSpec = _component("continuation", "whether a session goes on")
    returns: ComponentSpec = _component("hawkes", "when a user comes back")
    churn: ComponentSpec = _component("value_ema", "quitting for good at a return")
    survey: ComponentSpec = _component("linear", "survey answers after a session")


class Scenario(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="used in the run folder name")
    description: str = ""
    seed: int = Field(0, ge=0)
    horizon: Duration = Field(14 * 86400.0, description="simulated time after the warm-up")
    warmup: Duration = Field(
        7 * 86400.0, description="time under the warm-up policy before t=0; metrics exclude it"
    )
    warmup_policy: str = Field(
        "random", description="policy serving the warm-up: a built-in name or 'module:Class', with default parameters"
    )
    replications: int = Field(1, ge=1)
    engine: Literal["batched", "reference"] = Field(
        "batched",
        description="batched: users advanced together with NumPy (fast; same outputs as the reference "
        "engine, bit for bit); reference: one SimPy process per user (any policy, including online ones)",
    )
    workers: int = Field(0, ge=0, description="processes; 0 = one per core")
    executor: Literal["local", "dask"] = Field(
        "local", description="run tasks on a local process pool or a Dask cluster"
    )
    scheduler: Optional[str] = Field(None, description="address of a Dask scheduler to use")
    reference: Optional[str] = Field(
        None, description="policy the others are compared with (default: chronological, else the first)"
    )
    sweep: Optional[dict[str, list[Any]]] = Field(
        None, description="grid over dotted parameter paths, run by `recsim sweep`"
    )
    population: PopulationConfig = PopulationConfig()
    catalog: CatalogConfig = CatalogConfig()
    behaviour: BehaviourConfig = BehaviourConfig()
    user_model: UserModelConfig = UserModelConfig()
    recommender: RecommenderConfig = RecommenderConfig()
    policies: list[PolicySpec] = Field(min_length=1)
    outputs: OutputConfig = OutputConfig()

    @field_validator("horizon")
    @classmethod
    def _positive_horizon(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("the horizon must be positive")
        return value

    @field_validator("policies")
    @classmethod
    def _check_policies(cls, policies: list[PolicySpec]) -> list[PolicySpec]:
        from .policies.registry import validate_policy_spec

        names = [spec.name for spec in policies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"policy names must be unique; repeated: {', '.join(dupes)}")
        for index, spec in enumerate(policies):
            validate_policy_spec(spec, ("policies", index))
        return policies

    @field_validator("warmup_policy")
    @classmethod
    def _check_warmup_policy(cls, name: str) -> str:
        from .policies.registry import resolve_policy

        try:
            policy = resolve_policy(name)
        except LookupError as exc:
            raise ValueError(str(exc)) from None
        if policy.oracle:
            raise ValueError("the warm-up policy cannot be an oracle")
        try:
            policy.Params()
        except ValidationError as exc:
            missing = ", ".join(str(e["loc"][0]) for e in exc.errors() if e["loc"]) or "some"
            raise ValueError(
                f"the warm-up policy runs with its default parameters, but {name!r} has required "
                f"parameters ({missing}); give them defaults or use another warm-up policy"
            ) from None
        return name

    @field_validator("sweep")
    @classmethod
    def _check_sweep(cls, sweep: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
        if sweep is None:
            return None
        if not sweep:
            raise ValueError("a sweep needs at least one parameter")
        for path, values in sweep.items():
            if not values:
                raise PolicyParamError(("sweep", path), "give at least one value")
            if path.split(".")[0] in ("sweep", "name", "replications", "seed"):
                raise PolicyParamError(
                    ("sweep", path), "cannot be swept (every grid point keeps the same seeds and name)"
                )
        return sweep

    @model_validator(mode="after")
    def _check_user_model(self) -> Scenario:
        from .users.model import UserModelError, check_user_model_config

        try:
            check_user_model_config(self)
        except UserModelError as exc:
            raise PolicyParamError(("user_model", *exc.loc), str(exc)) from None
        return self

    @model_validator(mode="after")
    def _check_creators(self) -> Scenario:
        from .creators import build_creator_rule

        creators = self.catalog.creators
        if creators is None:
            return self
        loc = ("catalog", "creators")
        try:
            build_creator_rule(creators.rule, creators.params)
        except LookupError as exc:
            raise PolicyParamError((*loc, "rule"), str(exc)) from None
        except ValidationError as exc:
            first = exc.errors()[0]
            raise PolicyParamError((*loc, "params", *first["loc"]), first["msg"].removeprefix("Value error, ")) from None
        except Exception as exc:  # the user's rule failed while being built: bad input, named with its line
            from .plugins import error_line, short_message

            where = error_line(exc)
            raise PolicyParamError((*loc, "rule"), f"{creators.rule} cannot be built: {short_message(exc)}"
                                                   + (f" (at {where.location})" if where else "")) from None
        adaptations = self.horizon / creators.period
        if adaptations > MAX_ADAPTATIONS:
            raise PolicyParamError((*loc, "period"), f"creators would adapt about {adaptations:,.0f} times over the "
                                                     f"horizon; at most {MAX_ADAPTATIONS:,}: use a longer period")
        return self

    @model_validator(mode="after")
    def _check_scripted(self) -> Scenario:
        from .users.scripted import build_rule

        names = [group.name for group in self.population.scripted]
        takeover = self.population.takeover
        checks = [(("population", "scripted", index), group) for index, group in enumerate(self.population.scripted)]
        if takeover is not None:
            if takeover.users > self.population.n_users:
                raise PolicyParamError(("population", "takeover", "users"),
                                       f"at most population.n_users ({self.population.n_users})")
            try:
                rule = build_rule(takeover.rule, takeover.params)
            except LookupError as exc:
                raise PolicyParamError(("population", "takeover", "rule"), str(exc)) from None
            except ValidationError as exc:
                first = exc.errors()[0]
                raise PolicyParamError(("population", "takeover", "params", *first["loc"]), first["msg"]) from None
            items = getattr(rule, "items", None)
            if items is not None and ((items < 0) | (items >= self.catalog.n_items)).any():
                raise PolicyParamError(
                    ("population", "takeover", "params", "items"),
                    f"item ids must be in 0..{self.catalog.n_items - 1} (the items uploaded before the "
                    "warm-up; catalog.n_items)",
                )
        for loc, group in checks:
            index = loc[-1]
            if group.name in names[:index]:
                raise PolicyParamError((*loc, "name"), f"group names must be unique; {group.name!r} is repeated")
            if group.name == "modelled":
                raise PolicyParamError((*loc, "name"), "'modelled' names the behaviour model's users; choose another")
            try:
                rule = build_rule(group.rule, group.params)
            except LookupError as exc:
                raise PolicyParamError((*loc, "rule"), str(exc)) from None
            except ValidationError as exc:
                first = exc.errors()[0]
                raise PolicyParamError((*loc, "params", *first["loc"]), first["msg"]) from None
            items = getattr(rule, "items", None)
            if items is not None and ((items < 0) | (items >= self.catalog.n_items)).any():
                raise PolicyParamError(
                    (*loc, "params", "items"),
                    f"item ids must be in 0..{self.catalog.n_items - 1} (the items uploaded before the "
                    "warm-up; catalog.n_items)",
                )
        return self

    @model_validator(mode="after")
    def _check_clusters(self) -> Scenario:
        _check_cluster_indices(self.population.appetite_by_cluster, self.catalog.n_clusters,
                               ("population", "appetite_by_cluster"))
        return self

    @model_validator(mode="after")
    def _check_sizes(self) -> Scenario:
        names = [spec.name for spec in self.policies]
        if self.reference is not None and self.reference not in names:
            raise PolicyParamError(
                ("reference",), f"{self.reference!r} is not one of the policies ({', '.join(names)})"
            )
        if self.catalog.n_items < self.recommender.n_candidates:
            raise ValueError(
                "catalog.n_items must be at least recommender.n_candidates "
                f"({self.catalog.n_items} < {self.recommender.n_candidates})"
            )
        return self

    @model_validator(mode="after")
    def _check_resources(self) -> Scenario:
        estimate = estimate_resources(self)
        problem = estimate.problem()
        if problem is not None:
            raise PolicyParamError(*problem)
        return self

    def dump(self) -> dict[str, Any]:
        """The resolved scenario as plain YAML-able data (durations as strings)."""
        return self.model_dump(mode="json")


# ----------------------------------------------------------------------------- sizes
#: Largest item or user id the outputs hold (int32 columns of the event log).
MAX_IDS = 2**31 - 1
#: Most event rows one task may log: beyond it a task is weeks of compute and a terabyte.
MAX_EVENT_ROWS = 100_000_000_000
#: Most metrics buckets (``horizon / outputs.metrics_interval``) a task may have.
MAX_BUCKETS = 10_000_000
#: Most adaptations of the creators over a horizon (each writes a row per creator).
MAX_ADAPTATIONS = 100_000
# Measured on the batched engine (defaults, 20 topics, random policy, 2 cores): about 290
# event rows per user-day with 10-item slates, about 250 bytes of memory per watch of the
# current metrics bucket (the bucket keeps its watches until it closes; benchmarks/million.yaml,
# 1M users with 6-hour buckets, peaks at 2.4 GiB), ~6 KB per user, (3K + 10) floats per item
# with 50% overhead while the catalog is built, 250 MB for the interpreter and libraries,
# 250,000 events per second and 10 bytes of compressed Parquet per logged row.
_EVENTS_PER_SESSION_SLOT = 300 / 1.5 / 12  # per (session rate per day) per (slate_size + 2)
_BYTES_PER_BUCKET_WATCH = 250
_BYTES_PER_USER = 8 * 550
_BASE_BYTES = 250 * 2**20
_EVENTS_PER_SECOND = 250_000
_DISK_BYTES_PER_ROW = 10
_METRIC_ROWS_PER_BUCKET = 30
_BYTES_PER_METRIC_ROW = 300


def _machine_memory() -> int | None:
    """Physical memory of this machine in bytes (None if it cannot be told)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def _bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n / 1e3:.3g} kB"


def _count(n: float) -> str:
    return f"{n:,.0f}" if n < 1e9 else f"{n:.2g}"


def _time(seconds: float) -> str:
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.2g} {unit}"
    return f"{max(seconds, 1.0):.0f} s"


@dataclass(frozen=True)
class ResourceEstimate:
    """What one task (a policy on a replication) of a scenario needs, roughly: catalog
    items, memory, event rows logged and compute time, and the run's total on disk.
    Rough (within a factor of 2 or 3 of the measured baseline), for refusing impossible
    scenarios and telling what a run will take, not a budget."""

    items: float  # n_items + upload_rate × (warmup + horizon)
    n_items: float  # of which at the start
    users: int
    tasks: int
    item_bytes: float
    user_bytes: float
    bucket_bytes: float  # events of one metrics bucket held until the bucket closes
    metrics_bytes: float
    events_per_task: float  # rows logged (the horizon, sampled users)
    simulated_events: float  # every event simulated, warm-up included
    buckets: float
    disk_bytes: float  # the run's event logs, compressed
    seconds_per_task: float
    machine_memory: int | None

    @property
    def memory_per_task(self) -> float:
        return _BASE_BYTES + self.item_bytes + self.user_bytes + self.bucket_bytes + self.metrics_bytes

    def lines(self) -> list[str]:
        """The estimate in a few lines (``recsim validate`` prints them)."""
        machine = f"; this machine has {_bytes(self.machine_memory)}" if self.machine_memory else ""
        return [
            (
                f"{_count(self.items)} catalog items, {_count(self.users)} users; per task "
                f"~{_bytes(self.memory_per_task)} of memory{machine}"
            ),
            (
                f"~{_count(self.events_per_task)} event rows logged per task, "
                f"~{_bytes(self.disk_bytes)} on disk for {self.tasks} task(s); "
                f"~{_time(self.seconds_per_task)} of compute per task"
            ),
        ]

    def problem(self) -> tuple[tuple, str] | None:
        """``(field path, message)`` when the scenario cannot run here, else None."""
        found = self._problem()
        if found is not None and found[0] == ("catalog", "upload_rate"):
            # the usual cause: a rate written without a unit, read per second
            found = (found[0], found[1] + "; a rate without a unit is per second (write 150/d for 150 a day)")
        return found

    def _problem(self) -> tuple[tuple, str] | None:
        if self.items > MAX_IDS:
            uploads = self.items - self.n_items
            where = ("catalog", "upload_rate") if uploads > self.n_items else ("catalog", "n_items")
            return where, (
                f"the catalog would hold about {_count(self.items)} items ({_count(self.n_items)} "
                f"at the start + {_count(uploads)} uploaded over warm-up and horizon); at most "
                f"{_count(MAX_IDS)} fit (item ids are 32-bit)"
                + (f" and they would need ~{_bytes(self.item_bytes)} of memory" if self.item_bytes > 1e9 else "")
            )
        if self.buckets > MAX_BUCKETS:
            return ("outputs", "metrics_interval"), (
                f"the horizon holds about {_count(self.buckets)} metrics buckets; at most "
                f"{_count(MAX_BUCKETS)}: use a longer outputs.metrics_interval or a shorter horizon"
            )
        if self.events_per_task > MAX_EVENT_ROWS:
            return ("horizon",), (
                f"about {_count(self.events_per_task)} event rows per task "
                f"(~{_bytes(self.disk_bytes)} on disk, ~{_time(self.seconds_per_task)} of compute "
                f"per task); at most {_count(MAX_EVENT_ROWS)}: shorten the horizon, use fewer "
                "users, or log fewer events (outputs.event_sample, outputs.log_impressions: false)"
            )
        memory = self.machine_memory
        if memory is not None and self.memory_per_task > memory:
            parts = {
                ("catalog", "upload_rate" if self.items > 2 * self.n_items else "n_items"): self.item_bytes,
                ("population", "n_users"): self.user_bytes + self.bucket_bytes,
                ("outputs", "metrics_interval"): self.metrics_bytes,
            }
            where = max(parts, key=parts.get)
            return where, (
                f"one task would need ~{_bytes(self.memory_per_task)} of memory (catalog of "
                f"{_count(self.items)} items ~{_bytes(self.item_bytes)}, {_count(self.users)} users "
                f"~{_bytes(self.user_bytes + self.bucket_bytes)}, metrics "
                f"~{_bytes(self.metrics_bytes)}); this machine has {_bytes(memory)}"
            )
        return None


_NUMBER_LIKE = re.compile(r"^[-+]?(?:[0-9]+|0[xX][0-9a-fA-F]+)$|^[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MISSING_LIKE = {"none", "null", "na", "nan", "n/a", "true", "false"}


def hive_ambiguous(name: str) -> bool:
    """Whether a reader that guesses column types (pandas, polars or duckdb on
    ``policy=<name>`` folders without a schema, pandas ``read_csv`` without ``dtype``) would
    read the policy name back as something else than this text: a number, a date, a boolean
    or a missing value."""
    text = str(name).strip()
    if _NUMBER_LIKE.match(text) or text.lower() in _MISSING_LIKE:
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def default_workers(scenario: Scenario, n_tasks: int) -> int:
    """Worker processes for ``n_tasks`` tasks: the scenario's ``workers``, else one per core,
    never more than the tasks."""
    wanted = scenario.workers or os.cpu_count() or 1
    return max(1, min(wanted, n_tasks))


def estimate_resources(scenario: Scenario, machine_memory: int | None = -1) -> ResourceEstimate:
    """Roughly what ``scenario`` needs (:class:`ResourceEstimate`). ``machine_memory`` is the
    memory to compare with (default: this machine's)."""
    day = 86400.0
    span = scenario.warmup + scenario.horizon
    cat = scenario.catalog
    k = cat.n_topics
    items = cat.n_items + cat.upload_rate * span
    users = scenario.population.n_users
    slate = scenario.recommender.slate_size
    sessions_per_day = max(scenario.behaviour.returns.base_rate * day, 0.05)
    per_user_day = _EVENTS_PER_SESSION_SLOT * sessions_per_day * (slate + 2)
    logged_per_user_day = per_user_day if scenario.outputs.log_impressions else (
        _EVENTS_PER_SESSION_SLOT * sessions_per_day * 2
    )
    logged_users = sampled_users(scenario.outputs.event_sample, users)
    events = logged_users * scenario.horizon / day * logged_per_user_day
    simulated = users * span / day * per_user_day
    buckets = math.ceil(scenario.horizon / scenario.outputs.metrics_interval)
    bucket_span = min(scenario.outputs.metrics_interval, scenario.horizon)
    tasks = len(scenario.policies) * scenario.replications
    return ResourceEstimate(
        items=items,
        n_items=float(cat.n_items),
        users=users,
        tasks=tasks,
        item_bytes=items * (3 * k + 10) * 8 * 1.5,
        # + a bit per item and user for the watched items (recommender.exclude_watched)
        user_bytes=users * (_BYTES_PER_USER + 10 * k * 8 + (items / 8 if scenario.recommender.exclude_watched else 0)),
        # at most one watch per slate: _EVENTS_PER_SESSION_SLOT slates per session a day
        bucket_bytes=users * bucket_span / day * _EVENTS_PER_SESSION_SLOT * sessions_per_day * _BYTES_PER_BUCKET_WATCH,
        metrics_bytes=buckets * _METRIC_ROWS_PER_BUCKET * _BYTES_PER_METRIC_ROW,
        events_per_task=events,
        simulated_events=simulated,
        buckets=buckets,
        disk_bytes=events * tasks * _DISK_BYTES_PER_ROW,
        seconds_per_task=simulated / _EVENTS_PER_SECOND,
        machine_memory=_machine_memory() if machine_memory == -1 else machine_memory,
    )


# ----------------------------------------------------------------------------- errors
class ScenarioError(Exception):
    """A scenario that cannot be used: names the file, the field path and what was expected."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: invalid scenario"]
        lines += [f"  {path or '<top level>'}: {message}" for path, message in problems]
        super().__init__("\n".join(lines))

    def __reduce__(self):  # picklable with its attributes (it crosses to Dask workers and back)
        return (type(self), (self.source, self.problems), self.__dict__)


class PolicyParamError(ValueError):
    """Raised by policy validation with a field path relative to the scenario root."""

    def __init__(self, loc: tuple, message: str):
        self.loc = loc
        super().__init__(message)

    def __reduce__(self):  # picklable with its attributes
        return (type(self), (self.loc, str(self)), self.__dict__)


def _known_fields(loc: tuple) -> list[str]:
    model: Any = Scenario
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def _problems_from(error: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for item in error.errors():
        loc = tuple(part for part in item["loc"] if part not in _UNION_TAGS)
        ctx_error = item.get("ctx", {}).get("error")
        if isinstance(ctx_error, PolicyParamError):
            loc = ctx_error.loc
            message = str(ctx_error)
        elif isinstance(item.get("input"), _BoolGiven):
            message = f"expected a number, got {item['input']!r} (a boolean)"
        elif item["type"] == "extra_forbidden":
            known = _known_fields(loc)
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            message = f"unknown key {loc[-1]!r}"
            message += f" (did you mean {close[0]!r}?)" if close else ""
            if known:
                message += f"; expected one of: {', '.join(known)}"
        elif item["type"] == "missing":
            message = "required key is missing"
        else:
            message = item["msg"].removeprefix("Value error, ")
            if item["type"] not in ("value_error",) and "input" in item:
                shown = repr(item["input"])
                message += f" (got {shown[:60]})"
            message += _hint(item)
        # pydantic puts the tagged-union/model-level validators at the parent path
        path = ".".join(str(p) for p in loc)
        problems.append((path, message))
    return problems


def _hint(item: dict[str, Any]) -> str:
    """What to write instead, for the values YAML 1.1 habits produce."""
    value = item.get("input")
    kind = item["type"]
    if isinstance(value, str) and kind in ("int_parsing", "float_parsing", "int_from_float"):
        if value.strip().lower() in _YAML11_BOOLEANS:
            return "; only true and false are booleans in a scenario (YAML 1.2), so write a number"
        if re.fullmatch(r"\s*[-+]?[0-9]+(?::[0-5]?[0-9])+(?:\.[0-9]*)?\s*", value):
            return "; write a plain number (YAML 1.2 has no base-60 numbers such as 1:30)"
    if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return "; put the value in quotes to keep it as text, e.g. '007'"
    if kind == "string_type" and not isinstance(value, (bool, int, float, dict, list)):
        return "; put the value in quotes to keep it as text"
    return ""


def scenario_from_dict(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate plain data into a :class:`Scenario`; raise :class:`ScenarioError` otherwise."""
    if not isinstance(data, dict):
        raise ScenarioError(source, [("", f"expected a mapping of keys, got {type(data).__name__}")])
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, _problems_from(exc)) from None


def read_scenario_data(path: str | Path) -> dict[str, Any]:
    """Read a YAML scenario file into plain data (YAML 1.2 scalars, :class:`ScenarioLoader`),
    with clear errors."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise ScenarioError(source, [("", "file not found")])
    if path.is_dir():
        raise ScenarioError(source, [("", "is a directory, expected a YAML scenario file")])
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(source, [("", f"malformed YAML at {where}{problem}")]) from None
    except UnicodeDecodeError:
        raise ScenarioError(source, [("", "not a text (UTF-8) file")]) from None
    if data is None:
        raise ScenarioError(source, [("", "the file is empty")])
    if not isinstance(data, dict):
        raise ScenarioError(source, [("", f"expected a mapping of keys, got {type(data).__name__}")])
    return data


def set_path(data: dict[str, Any], path: str, value: Any, source: str) -> None:
    """Set ``value`` at dotted ``path`` in plain scenario data (in place); list items by index."""
    parts = path.strip().split(".")
    node: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                where = ".".join(parts[: depth + 1])
                raise ScenarioError(source, [(where, f"no list item {part!r} to set")])
            index = int(part)
            if isinstance(node[index], str) and not last:
                # a policy given by name only: expand it so that its params can be set
                node[index] = {"name": _default_name(node[index]), "type": node[index]}
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            where = ".".join(parts[:depth])
            raise ScenarioError(source, [(where, "is not a mapping; cannot set a key inside it")])


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides (values parsed as YAML 1.2, like scenario files:
    :func:`load_yaml`) to a copy of ``data``.

    List items are addressed by index (``policies.0.params.epsilon=0.1``).
    """
    data = copy.deepcopy(data)
    for override in overrides:
        if "=" not in override:
            raise ScenarioError(source, [(override, "an override must look like dotted.key=value")])
        key, _, raw = override.partition("=")
        try:
            value = load_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        set_path(data, key, value, source)
    return data


def load_scenario(
    path: str | Path, overrides: list[str] | None = None, seed: int | None = None
) -> Scenario:
    """Load, override and validate a scenario file. Raises :class:`ScenarioError`.

    The working directory and the file's own directory are put on ``sys.path`` so that
    policies named ``"module:Class"`` can live beside the scenario.
    """
    source = str(path)
    data = read_scenario_data(path)
    # user policies ("module:Class") are found in the working directory and next to the file
    for folder in (Path(path).resolve().parent, Path.cwd()):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    if overrides:
        data = apply_overrides(data, overrides, source)
    if seed is not None:
        data["seed"] = seed
    return scenario_from_dict(data, source)


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema of scenario files (for editors and documentation)."""
    schema = Scenario.model_json_schema(mode="validation")
    spec = schema["$defs"]["PolicySpec"]
    spec["required"] = []
    spec["anyOf"] = [{"required": ["type"]}, {"required": ["name"]}]
    schema["$defs"]["PolicySpec"] = {
        "anyOf": [
            {"type": "string", "description": "a built-in policy name or 'module:Class'"},
            spec,
        ]
    }
    component = schema["$defs"]["ComponentSpec"]
    schema["$defs"]["ComponentSpec"] = {
        "anyOf": [
            {"type": "string", "description": "a built-in component name or 'module:Class'"},
            component,
        ]
    }
    return schema
