"""What each component method must return: the user model's output contract, in one place.

:func:`recsim.testing.check_user_model` holds a component to it on synthetic inputs, and the
engines hold components that are not recsim's own to it on every call (a buggy plug-in stops
the run with a message naming the role, the component and what was wrong, rather than
writing wrong results). Each rule raises :class:`ContractError` with the name of the property
it belongs to (a key of ``recsim.testing.USER_MODEL_CHECKS``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ContractError", "OutputContract", "OBSERVABLE", "describe"]

#: the outputs that become observable (logged, or decide what is logged), by (role, method)
OBSERVABLE = {
    ("choice", "probabilities"): "choice probabilities (the clicked position is drawn from them)",
    ("response", "watch_time"): "watch times",
    ("session", "after_watch"): "continuation flags",
    ("session", "after_no_click"): "continuation flags",
    ("returns", "next_return"): "return times",
    ("churn", "probability"): "churn probabilities",
    ("survey", "respond"): "survey answers",
}


class ContractError(ValueError):
    """An output that breaks its role's contract; ``check`` names the property."""

    def __init__(self, check: str, message: str):
        super().__init__(message)
        self.check = check
        self.message = message

    def __reduce__(self):  # picklable with its attributes (it may cross processes)
        return (type(self), (self.check, self.message), self.__dict__)


def describe(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"{type(x).__name__} of shape {x.shape} and dtype {x.dtype}"
    return type(x).__name__


class OutputContract:
    """The contract of every component of ``model``, whose users' hidden state is ``state``
    (a :class:`~recsim.users.state.UserState`: the fields' dtypes and shapes) and whose
    writable fields are ``hidden`` (the sampler's and those some component provides).

    :meth:`validate` checks one call's output; ``args`` are the call's arguments."""

    def __init__(self, model: Any, state: Any, hidden: set[str]):
        self.model = model
        self.state = state
        self.hidden = hidden

    def _array(self, role: str, what: str, x: Any, shape: tuple, kinds: str = "f") -> np.ndarray:
        if not isinstance(x, np.ndarray):
            raise ContractError(
                "shapes",
                f"{what} returned a {describe(x)}; expected a numpy array of shape {shape}",
            )
        if x.shape != shape:
            raise ContractError("shapes", f"{what} returned shape {x.shape}; expected {shape}")
        if x.dtype.kind not in kinds:
            expected = {"f": "float", "b": "bool", "biuf": "numeric"}.get(kinds, kinds)
            raise ContractError("shapes", f"{what} returned dtype {x.dtype}; expected {expected}")
        return x

    def _plain(self, role: str, what: str, x: np.ndarray, label: str) -> None:
        if type(x) is not np.ndarray or x.dtype.kind not in "biuf":
            raise ContractError(
                "hidden_observable_split",
                f"{what} returned {label} as a {describe(x)}; observable outputs are plain numpy "
                "arrays of numbers (nothing else rides along with what the platform observes)",
            )

    def _fields(self, role: str, what: str, out: Any, n: int, exact: tuple[str, ...]) -> None:
        """Initial values (sample, initial_state): ``exact`` fields, ``(n, ...)`` arrays."""
        if not isinstance(out, dict):
            raise ContractError("shapes", f"{what} returned a {describe(out)}; expected a dict of arrays"
            )
        if set(out) != set(exact):
            raise ContractError(
                "hidden_observable_split",
                f"{what} gives the fields {sorted(out)} but the component declares provides = "
                f"{exact!r}: it must give initial values of exactly the fields it provides "
                "(other components name them in requires)",
            )
        for name, values in out.items():
            if not isinstance(values, np.ndarray) or values.ndim == 0 or values.shape[0] != n:
                raise ContractError("shapes",
                    f"{what}[{name!r}] is a {describe(values)}; expected an array with a leading "
                    f"axis of {n} users",
                )
            if values.dtype.kind not in "biuf":
                raise ContractError("shapes", f"{what}[{name!r}] has dtype {values.dtype}; expected numbers"
                )

    def _updates(self, role: str, what: str, out: Any, B: int) -> None:
        """New values of state fields for a batch of ``B`` users."""
        if not isinstance(out, dict):
            raise ContractError(
                "shapes",
                f"{what} returned a {describe(out)}; expected a dict of state fields",
            )
        for name in out:
            if name not in self.hidden:
                raise ContractError("hidden_observable_split",
                    f"{what} writes {name!r}, which is not a hidden-state field of the model "
                    f"(fields: {', '.join(sorted(self.hidden))}); a component writes only fields "
                    "the sampler samples or some component provides (declare a new one in "
                    "provides, with its initial value from initial_state)",
                )
        for name, values in out.items():
            field = self.state[name]
            shape = (B,) + field.shape[1:]
            if not isinstance(values, np.ndarray) or values.shape != shape:
                raise ContractError("shapes",
                    f"{what}[{name!r}] is a {describe(values)}; expected an array of shape "
                    f"{shape} (the field's shape for a batch of {B})",
                )
            if not np.can_cast(values.dtype, field.dtype, "same_kind"):
                raise ContractError("shapes",
                    f"{what}[{name!r}] has dtype {values.dtype}; the field holds {field.dtype}",
                )

    def validate(self, role: str, method: str, out: Any, args: tuple) -> None:
        what = f"{method}()"
        component = self.model.components[role]
        if method == "sample":
            self._fields(role, what, out, args[0], component.provides)
            return
        if method == "initial_state":
            self._fields(role, what, out, args[0].n_rows, component.provides)
            return
        B = args[0].n_rows
        observable = OBSERVABLE.get((role, method))
        if method == "score":
            items = args[1]
            if not isinstance(out, dict) or "allure" not in out:
                raise ContractError("shapes",
                    f"{what} returned a {describe(out)}; expected a dict of item-shaped "
                    "arrays holding 'allure'",
                )
            for name, values in out.items():
                self._array(role, f"{what}[{name!r}]", values, items.shape, "biuf")
            if not np.isfinite(out["allure"]).all():
                raise ContractError("shapes", f"{what}['allure'] is not finite")
        elif method == "value":
            x = self._array(role, what, out, args[1].shape)
            if not np.isfinite(x).all():
                raise ContractError("shapes", f"{what} returned values that are not finite")
        elif method == "probabilities":
            n = args[1]["allure"].shape[1]
            x = self._array(role, what, out, (B, n + 1))
            if not np.isfinite(x).all() or (x < 0).any():
                raise ContractError("shapes", f"{what} returned probabilities that are negative or not finite"
                )
            worst = float(np.max(np.abs(x.sum(axis=1) - 1.0)))
            if worst > 1e-9:
                raise ContractError("shapes", f"{what}: rows sum to 1 only within {worst:.3g}; the contract is within 1e-9"
                )
        elif method in ("watch_time", "expected_watch_time"):
            items = args[1]
            x = self._array(role, what, out, items.shape)
            length = items.length
            if not np.isfinite(x).all() or (x < 0).any() or (x > length).any():
                raise ContractError("shapes", f"{what} returned times outside [0, item length] seconds"
                )
        elif method in ("consume", "relax", "start", "end_session"):
            self._updates(role, what, out, B)
        elif method in ("after_watch", "after_no_click"):
            if not isinstance(out, tuple) or len(out) != 2:
                raise ContractError("shapes", f"{what} returned a {describe(out)}; expected (flags, updates)"
                )
            self._array(role, f"{what}'s continuation flags", out[0], (B,), "b")
            self._updates(role, what, out[1], B)
            self._plain(role, what, out[0], observable)
            return
        elif method == "next_return":
            now, until = args[1], args[2]
            x = self._array(role, what, out, (B,))
            finite = np.isfinite(x)
            if (
                np.isnan(x).any()
                or (x[finite] <= now[finite]).any()
                or (x[finite] > until).any()
                or (x[~finite] < 0).any()
            ):
                raise ContractError("shapes",
                    f"{what} returned times that are not after now and by until, nor inf",
                )
        elif method == "probability":
            x = self._array(role, what, out, (B,))
            if np.isnan(x).any() or (x < 0).any() or (x > 1).any():
                raise ContractError("shapes", f"{what} returned probabilities outside [0, 1]")
        elif method == "wellbeing":
            x = self._array(role, what, out, (B,))
            if ((x < 0) | (x > 1)).any():
                raise ContractError("shapes", f"{what} returned wellbeing outside [0, 1] (NaN if undefined)"
                )
        elif method == "respond":
            x = self._array(role, what, out, (B,))
            answered = x[~np.isnan(x)]
            if not np.isin(answered, (1.0, 2.0, 3.0, 4.0, 5.0)).all():
                raise ContractError("shapes", f"{what} returned answers other than 1, ..., 5 or NaN"
                )
        if observable is not None:
            self._plain(role, what, out, observable)
