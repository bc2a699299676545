"""The hidden truth as seen by oracle policies (upper bounds only, never by learned ones).

Every quantity comes from the scenario's user model — the same components the engines run —
so an oracle ranks by exactly what the simulated users will do.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from . import kernels
from .users.model import UserModel
from .users.state import ItemView, StateView, UserState

__all__ = ["OracleView", "block_elements"]

#: (row, candidate) pairs an oracle computes at once with the NumPy code: its ``(K, rows, c)``
#: gathers of topic vectors (~1.3 MB at K = 20) and ``(rows, c)`` temporaries stay in cache
NUMPY_BLOCK = 1 << 13
#: ... and when the compiled kernels compute the allure, which gathers no topic vectors: a
#: block takes a whole batch of the usual size (~300 rows of 200 candidates), so Python's
#: per-block work (a view, its state lookups, one call per quantity) is paid once per batch
COMPILED_BLOCK = 1 << 16


def block_elements(model: UserModel) -> int:
    """How many (row, candidate) pairs to compute an :class:`OracleView` of at once with
    ``model``: :data:`COMPILED_BLOCK` when its allure component is the default one and the
    compiled kernels compute it (:func:`recsim.kernels.enabled`, its formulas as defined),
    else :data:`NUMPY_BLOCK`. Only speed depends on it: a row's numbers do not depend on its
    block."""
    from .users import formulas
    from .users.default import Allure

    if kernels.enabled() and getattr(type(model.allure), "score", None) is Allure.score \
            and formulas.as_defined("relevance", "grip", "allure"):
        return COMPILED_BLOCK
    return NUMPY_BLOCK


class OracleView:
    """True per-candidate quantities of one request, ``(c,)`` arrays, or of a block of ``B``
    requests at once, ``(B, c)`` arrays (row for row the same numbers): computed on first
    access from the user model.

    ``state`` is the user state and ``users`` the users of the rows ``(B,)``; ``candidates``
    ``(c,)`` for one request (then ``users`` has one entry) or ``(B, c)``."""

    def __init__(self, model: UserModel, state: UserState, users: np.ndarray, candidates: np.ndarray, catalog):
        self.model = model
        self.users = np.asarray(users, dtype=np.int64).reshape(-1)
        self.candidates = candidates
        self.catalog = catalog
        self._single = candidates.ndim == 1
        self._state = state

    def rows(self, rows: np.ndarray) -> OracleView:
        """Rows ``rows`` of this block's ``(B, c)`` candidates as a view of their own."""
        candidates = self.candidates.reshape(self.users.shape[0], -1)
        return OracleView(self.model, self._state, self.users[rows], candidates[rows], self.catalog)

    def _out(self, x: np.ndarray) -> np.ndarray:
        return x[0] if self._single else x

    @cached_property
    def state(self) -> StateView:
        """The hidden state of the row(s)' user(s) (a read-only mapping of ``(B, ...)`` arrays)."""
        return self.model.view(self._state, self.users)

    @cached_property
    def items(self) -> ItemView:
        """True and observable attributes of the candidates, ``(B, c)``."""
        return ItemView(self.catalog, self.candidates.reshape(self.users.shape[0], self.candidates.shape[-1]))

    @cached_property
    def _terms(self) -> dict[str, np.ndarray]:
        return self.model.allure.score(self.state, self.items)

    @property
    def relevance(self) -> np.ndarray:
        return self._out(self._terms["relevance"])

    @property
    def allure(self) -> np.ndarray:
        return self._out(self._terms["allure"])

    @cached_property
    def click_probability(self) -> np.ndarray:
        """P(click) of each candidate if shown alone in position 1."""
        return self._out(self.model.click_probability_alone(self.state, self._terms))

    @cached_property
    def _expected_watch_time(self) -> np.ndarray:
        return self.model.response.expected_watch_time(self.state, self.items, self._terms)

    @property
    def expected_watch_time(self) -> np.ndarray:
        """E[τ | click] in seconds."""
        return self._out(self._expected_watch_time)

    @cached_property
    def expected_value(self) -> np.ndarray:
        """E[V | click]: the value of watching the expected watch time."""
        return self._out(self.model.value.value(self.state, self.items, self._terms, self._expected_watch_time))

    # the user's hidden state by name, for oracle policies of one's own
    def _field(self, name: str):
        x = self.state[name]
        return x[0] if self._single else x

    @property
    def theta(self) -> np.ndarray:
        return self._field("theta")

    @property
    def appetite(self):
        return self._field("appetite")

    @property
    def fatigue(self):
        return self._field("fatigue")

    @property
    def wellbeing(self):
        return self._field("wellbeing")
