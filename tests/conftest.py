"""Shared fixtures: tiny scenarios that run in a second or two."""

from __future__ import annotations

import copy

import pytest

TINY = {
    "name": "tiny",
    "seed": 7,
    "horizon": "2d",
    "warmup": "1d",
    "replications": 1,
    "workers": 1,
    "population": {"n_users": 12},
    "catalog": {"n_items": 400, "upload_rate": "100/d"},
    "recommender": {"slate_size": 5, "n_candidates": 40, "retrain_interval": "12h"},
    "policies": ["random", "chronological", "popularity", "engagement_oracle", "wellbeing_oracle"],
    "outputs": {"metrics_interval": "12h"},
}


@pytest.fixture
def tiny() -> dict:
    """A fresh copy of the tiny scenario's data (mutate freely)."""
    return copy.deepcopy(TINY)
