"""Targets recsim cannot run yet: each says what is missing (status ``not expressed``)."""

from __future__ import annotations

from functools import partial

from . import Outcome, Target


def _not_expressed(reason: str, size: str) -> Outcome:
    return Outcome("not measured", "not expressed", [reason])


def _pending(number: int, key: str, title: str, source: str, expected: str, tolerance: str, reason: str) -> Target:
    return Target(number=number, key=key, title=title, source=source, expected=expected, tolerance=tolerance,
                  check=partial(_not_expressed, reason), status="not expressed", reason=reason)


TARGETS = [
    _pending(7, "breaks", "Breaks that raise visits",
             "Saig & Rosenfeld, ICML 2023",
             "α = 0.2, β = γ = δ = 1: long-run visit rate 0.8 without breaks, 1.25 with a = 0.4; extinction when "
             "aβ ≤ α; the best break probability 1 − 2α/β = 0.6 beats 0 and 0.9",
             "5% (the source's)",
             "needs a need-stock user model (consumption depletes a stock that drives visits), not built yet"),
    _pending(9, "cold_turkey", "Cold turkey",
             "Kleinberg, Mullainathan & Raghavan 2022",
             "more high-pull low-value content lengthens sessions and lowers long-run utility; daily actives drop "
             "≥ 50% within one step once a visit's utility falls below the outside option",
             "paired replications, intervals excluding 0",
             "needs churn driven by whole-session utility against an outside option, and the sweep; not built yet"),
    _pending(10, "homogenization", "Homogenization",
             "Chaney, Stewart & Engelhardt, RecSys 2018",
             "Jaccard similarity of paired users higher and mean utility lower under popularity, matrix "
             "factorization and content filtering than under the ideal recommender",
             "paired differences over ≥ 25 seeds, intervals excluding 0",
             "needs a matrix-factorization policy (a well-kept library) and the paper's world; not built yet"),
    _pending(11, "degeneracy", "Degeneracy ordering",
             "Jiang et al., AIES 2019",
             "preference drift fastest under greedy, slower with ε-greedy (0.1, 0.3), slower still with a growing "
             "candidate pool (slopes of log‖μ_t − μ₀‖ against log t)",
             "intervals on the slopes",
             "the policies and the growing pool exist; the slope measurement is not built yet"),
    _pending(12, "amplification_paradox", "Amplification paradox",
             "Ribeiro, Veselovsky & West, 2023",
             "top-recommendation bots reach far more extreme content than utility-driven users; the "
             "amplification ratio can be below 1 for utility-driven users",
             "intervals over replications",
             "needs the co-consumption recommender of target 10; scripted users exist"),
    _pending(13, "field_experiment", "Engagement vs chronological feed",
             "Milli et al., 2023",
             "engagement ranking serves content 0.24–0.47 SD more extreme; stated value not higher; a "
             "stated-preference ranker serves less extreme content",
             "signs must match; magnitude within a factor of 2 after a documented calibration",
             "the measurement and the calibration of the defaults are not built yet (the shipped defaults gave "
             "0.84 SD by hand)"),
    _pending(14, "forgetting_time", "Forgetting time",
             "Hosseinmardi et al., PNAS 2024",
             "served extremeness returns within 10% of the moderate baseline ≈ ln 0.1 / ln(1 − w) items after "
             "the user switches (≈ 30 at w ≈ 0.074)",
             "the source's 10%",
             "needs a policy whose profile is an exponential moving average per item; the fork harness exists"),
    _pending(15, "migration", "Migration pattern",
             "Ribeiro et al., FAT* 2020",
             "with the appetite ratchet on, the share of extreme consumers whose earlier consumption was only "
             "mild grows over time; with it off it collapses",
             "intervals over replications",
             "the measurement over user histories is not built yet"),
]
