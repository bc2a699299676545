"""Recommendation policies: the interface, built-ins and the registry."""

from .base import CandidateFeatures, Feedback, FunctionPolicy, History, Policy, PolicyContext, Request
from .registry import BUILTIN_POLICIES, build_policy, resolve_policy

__all__ = [
    "Policy",
    "PolicyContext",
    "Request",
    "History",
    "CandidateFeatures",
    "Feedback",
    "FunctionPolicy",
    "BUILTIN_POLICIES",
    "build_policy",
    "resolve_policy",
]
