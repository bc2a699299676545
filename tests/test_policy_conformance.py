"""recsim.testing.check_policy: every built-in conforms, and broken policies are caught, each
by the property it breaks."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from recsim.policies.base import FunctionPolicy, Policy, PolicyContext, Request, ScoringPolicy, observes_feedback, top_k
from recsim.policies.builtin import PopularityPolicy, RandomPolicy
from recsim.policies.registry import BUILTIN_POLICIES, resolve_policy
from recsim.testing import POLICY_CHECKS, PolicyCheckError, check_policy


# ----------------------------------------------------------------------------- built-ins
@pytest.mark.parametrize("name", BUILTIN_POLICIES)
def test_builtin_policy_conforms(name):
    check_policy(resolve_policy(name)())


@pytest.mark.parametrize("name", BUILTIN_POLICIES)
def test_builtin_policy_conforms_under_another_seed(name):
    check_policy(resolve_policy(name)(), seed=12345, n_requests=12)


def test_every_builtin_is_parametrized():
    """The parametrization is the registry itself: a new built-in is checked automatically."""
    assert len(BUILTIN_POLICIES) >= 5
    assert {"random", "chronological", "popularity", "engagement_oracle", "wellbeing_oracle"} <= set(
        BUILTIN_POLICIES
    )


def test_accepts_a_class_and_leaves_the_instance_alone():
    check_policy(RandomPolicy)
    policy = PopularityPolicy(half_life="2h")
    before = copy.deepcopy(policy.__dict__)
    check_policy(policy)
    assert policy.__dict__.keys() == before.keys()  # never reset or fitted in place
    assert policy.params == before["params"]


def test_rejects_what_is_not_a_policy():
    with pytest.raises(AssertionError, match="'interface'"):
        check_policy(object())
    with pytest.raises(AssertionError, match="'interface'"):
        check_policy(dict)


def test_every_failure_names_a_documented_property():
    assert set(POLICY_CHECKS) >= {
        "slate_length", "integer_ids", "no_duplicates", "subset_of_candidates", "request_unchanged",
        "no_global_random", "deterministic", "picklable", "reset_clears_state", "observe_in_pieces",
    }


@pytest.mark.parametrize("name", ["engagement", "harm_penalized"])
def test_the_learned_rankers_learn_alike_from_feedback_in_pieces(name):
    """With min_clicks 1 they fit a model on the checker's logged feedback, so the
    observe_in_pieces check compares two fitted models, not two unfitted ones."""
    from recsim.testing.policy import _FIT_TIME, _build_world

    policy = resolve_policy(name)(min_clicks=1)
    assert observes_feedback(policy)
    check_policy(policy)
    world = _build_world(0, 24)
    fitted = copy.deepcopy(policy)
    fitted.reset(world.context)
    fitted.fit(world.feedback, _FIT_TIME)
    assert fitted.model_.fitted


# ----------------------------------------------------------------------------- good plug-ins
def newest_first(request: Request, rng: np.random.Generator) -> np.ndarray:
    return top_k(request.candidates, request.features.upload_time, request.slate_size)


def test_function_policy_of_a_correct_function_passes():
    check_policy(FunctionPolicy(newest_first))


class MildestFirst(ScoringPolicy):
    """A correct user-written scoring policy with learned state (a per-item click count)."""

    def reset(self, context: PolicyContext) -> None:
        self.clicks_ = np.zeros(context.items.n_items)

    def fit(self, feedback, now):
        np.add.at(self.clicks_, feedback.item_id[feedback.clicked], 1.0)

    def score(self, request, rng):
        return self.clicks_[request.candidates] - request.features.classifier + 1e-9 * rng.random(
            request.candidates.shape[0]
        )


def test_user_scoring_policy_with_learned_state_passes():
    check_policy(MildestFirst())


class BreakAfterAnHour(Policy):
    """Ends the session (empty slate) once the user watched an hour in it."""

    may_end_sessions = True

    def recommend(self, request, rng):
        if request.history.session_watch_seconds > 3600:
            return np.empty(0, dtype=np.int64)
        return request.candidates[rng.choice(request.candidates.shape[0], request.slate_size, replace=False)]


class UndeclaredBreak(BreakAfterAnHour):
    may_end_sessions = False


def test_empty_slates_need_may_end_sessions():
    check_policy(BreakAfterAnHour())  # the synthetic world has users deep into a session
    with pytest.raises(AssertionError, match="'slate_length'.*may_end_sessions"):
        check_policy(UndeclaredBreak())


# ----------------------------------------------------------------------------- broken plug-ins
class Duplicates(Policy):
    def recommend(self, request, rng):
        return np.repeat(request.candidates[:1], request.slate_size)


class OutsideCandidates(Policy):
    def recommend(self, request, rng):
        slate = request.candidates[: request.slate_size].copy()
        slate[-1] = np.setdiff1d(np.arange(request.candidates.max() + 2), request.candidates)[0]
        return slate


class TooMany(Policy):
    def recommend(self, request, rng):
        return request.candidates[: request.slate_size + 1]


class TooFew(Policy):
    def recommend(self, request, rng):
        return request.candidates[: request.slate_size - 1]


class FloatIds(Policy):
    def recommend(self, request, rng):
        return request.candidates[: request.slate_size].astype(float)


class ListSlate(Policy):
    def recommend(self, request, rng):
        return request.candidates[: request.slate_size].tolist()


class SortsCandidatesInPlace(Policy):
    def recommend(self, request, rng):
        request.candidates.sort()
        return request.candidates[: request.slate_size]


class NormalizesFeaturesInPlace(Policy):
    def recommend(self, request, rng):
        request.features.classifier[:] = 0.0
        return request.candidates[: request.slate_size]


class WritesHistory(Policy):
    def recommend(self, request, rng):
        request.history.n_clicks += 1
        return request.candidates[: request.slate_size]


class WritesItems(Policy):
    def reset(self, context):
        context.items.length[0] += 1.0

    def recommend(self, request, rng):
        return request.candidates[: request.slate_size]


class GlobalRandom(Policy):
    def recommend(self, request, rng):
        n = request.candidates.shape[0]
        return request.candidates[np.random.permutation(n)[: request.slate_size]]


class OwnUnseededGenerator(Policy):
    """Ignores its rng and draws from a fresh, OS-seeded generator: not reproducible."""

    def recommend(self, request, rng):
        n = request.candidates.shape[0]
        return request.candidates[np.random.default_rng().permutation(n)[: request.slate_size]]


class HoldsLambda(RandomPolicy):
    def __init__(self, **params):
        super().__init__(**params)
        self.key = lambda x: -x


class HoldsGenerator(RandomPolicy):
    def reset(self, context):
        self.stream_ = (i for i in range(10**9))


class ResetKeepsCounts(Policy):
    """Learns click counts in fit but creates them only once, so reset does not clear them."""

    def reset(self, context):
        if not hasattr(self, "counts_"):
            self.counts_ = np.zeros(context.items.n_items)

    def fit(self, feedback, now):
        np.add.at(self.counts_, feedback.item_id, feedback.watch_time)

    def recommend(self, request, rng):
        return top_k(request.candidates, self.counts_[request.candidates], request.slate_size)


class CrashesOnEmptyFeedback(PopularityPolicy):
    def fit(self, feedback, now):
        if len(feedback) == 0:
            raise ValueError("nothing to learn from")
        super().fit(feedback, now)


class CountsItsPieces(PopularityPolicy):
    """Observes feedback as it is logged but learns how many pieces it came in: what it
    serves depends on where the engine cut them."""

    def reset(self, context):
        super().reset(context)
        self.pieces_ = 0

    def observe(self, feedback):
        self.pieces_ += 1

    def fit(self, feedback, now):
        super().fit(feedback, now)

    def recommend(self, request, rng):
        slate = super().recommend(request, rng)
        return np.roll(slate, self.pieces_)


class ServesWhatItObserves(PopularityPolicy):
    """Ranks by the watch time observed so far, updated in observe itself: what it serves
    between retrains depends on where the engine cut the pieces."""

    def observe(self, feedback):
        super().fit(feedback, 0.0)

    def fit(self, feedback, now):
        self.observe(feedback)


class KeepsTheLastPieces(PopularityPolicy):
    """Learns from the last 6 pieces it observed only: right for 4 pieces, wrong for 16."""

    def reset(self, context):
        super().reset(context)
        self.pieces_ = []

    def observe(self, feedback):
        self.pieces_ = (self.pieces_ + [feedback])[-6:]

    def fit(self, feedback, now):
        for piece in self.pieces_ + [feedback]:
            super().fit(piece, now)
        self.pieces_ = []


class ObservesWithoutFit(RandomPolicy):
    def observe(self, feedback):
        pass


class ClaimsToDrawNothing(RandomPolicy):
    """Declares draws_nothing but serves a random slate (epsilon_greedy around it would serve
    a batch differently from its requests one by one)."""

    draws_nothing = True


BROKEN = [
    (Duplicates, "no_duplicates"),
    (OutsideCandidates, "subset_of_candidates"),
    (TooMany, "slate_length"),
    (TooFew, "slate_length"),
    (FloatIds, "integer_ids"),
    (ListSlate, "integer_ids"),
    (SortsCandidatesInPlace, "request_unchanged"),
    (NormalizesFeaturesInPlace, "request_unchanged"),
    (WritesHistory, "request_unchanged"),
    (WritesItems, "context_unchanged"),
    (GlobalRandom, "no_global_random"),
    (OwnUnseededGenerator, "deterministic"),
    (HoldsLambda, "picklable"),
    (HoldsGenerator, "picklable"),
    (ResetKeepsCounts, "reset_clears_state"),
    (CrashesOnEmptyFeedback, "interface"),
    (CountsItsPieces, "observe_in_pieces"),
    (ServesWhatItObserves, "observe_in_pieces"),
    (KeepsTheLastPieces, "observe_in_pieces"),
    (ObservesWithoutFit, "interface"),
    (ClaimsToDrawNothing, "draws_nothing"),
]


@pytest.mark.parametrize("cls, prop", BROKEN, ids=[cls.__name__ for cls, _ in BROKEN])
def test_check_policy_catches_broken_policy(cls, prop):
    with pytest.raises(AssertionError, match=f"property '{prop}' failed") as info:
        check_policy(cls())
    assert cls.__name__ in str(info.value)
    assert isinstance(info.value, PolicyCheckError) and info.value.check == prop


def test_check_policy_holds_a_wrapped_base_to_its_draws_nothing():
    """epsilon_greedy trusts its base's draws_nothing to serve a batch through the base's batch
    method; a base that claims it falsely would make the engines differ, so the check of the
    wrapper serves the base too and fails on the draw."""
    from recsim.policies.rerank import EpsilonGreedyPolicy

    liar = f"{__name__}:ClaimsToDrawNothing"
    with pytest.raises(PolicyCheckError, match="its base ClaimsToDrawNothing") as info:
        check_policy(EpsilonGreedyPolicy(base=liar, epsilon=0.3))
    assert info.value.check == "draws_nothing"
    check_policy(EpsilonGreedyPolicy(base="popularity", epsilon=0.3))  # an honest base passes


def test_function_policy_holding_a_lambda_is_not_picklable():
    with pytest.raises(AssertionError, match="'picklable'"):
        check_policy(FunctionPolicy(lambda request, rng: newest_first(request, rng)))


def test_a_crash_in_recommend_is_reported_with_its_cause():
    def broken(request, rng):
        raise ZeroDivisionError("no history")

    with pytest.raises(AssertionError, match="'interface'.*ZeroDivisionError") as info:
        check_policy(FunctionPolicy(broken))
    assert isinstance(info.value.__cause__, ZeroDivisionError)
