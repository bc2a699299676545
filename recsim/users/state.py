"""Hidden user state as a struct of arrays, the rows a component sees, and the draws it gets.

* :class:`UserState` holds every user's hidden state: one array per field with a leading
  ``n_users`` axis (``theta`` is ``(n_users, K)``, most fields ``(n_users,)``).
* :class:`StateView` is the state of a batch of users as a read-only mapping, gathered on
  first access (a component reads only the fields it needs). Derived quantities that the user
  model defines once (``wellbeing``) are computed on access too.
* :class:`ItemView` is the same for items: true and observable attributes gathered by id, for
  ids of any shape (``(B,)`` for a watched item per user, ``(B, n)`` for a slate per user).
* :class:`Draws` hands a component the counter-based random numbers of a batch of users: the
  k-th draw of stream ``s`` for user ``u`` is a pure function of (seed, replication, s, u, k),
  so the same user gets the same numbers whichever batch it is in (common random numbers, and
  the reason the two engines agree bit for bit).

Nothing here knows SimPy or a policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Iterator

import numpy as np

from .. import kernels
from .. import rng as rngmod

__all__ = ["UserState", "StateView", "ItemView", "Draws", "align", "gather_items"]


def _readonly(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.flags.writeable:
        x = x.view()
        x.flags.writeable = False
    return x


def align(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``x`` of shape ``(B,)`` reshaped to broadcast against ``like`` of shape ``(B, ...)``:
    a per-user quantity against a per-(user, slate position) one."""
    x = np.asarray(x)
    extra = np.ndim(like) - x.ndim
    return x.reshape(x.shape + (1,) * extra) if extra > 0 else x


class UserState:
    """Every user's hidden state: ``name -> array`` with a leading ``n_users`` axis.

    Fields are added by the user model's components (:meth:`add`); the engines write a batch's
    new values with :meth:`put`. Never handed to a non-oracle policy.
    """

    def __init__(self, n_users: int, arrays: dict[str, np.ndarray] | None = None):
        self.n_users = int(n_users)
        self.arrays: dict[str, np.ndarray] = {}
        for name, values in (arrays or {}).items():
            self.add(name, values)

    def add(self, name: str, values: np.ndarray) -> None:
        """Add (or replace) field ``name``; ``values`` has a leading ``n_users`` axis."""
        values = np.array(values)  # a private, writable copy
        if values.ndim == 0 or values.shape[0] != self.n_users:
            raise ValueError(
                f"state field {name!r} has shape {values.shape}; expected a leading axis of "
                f"{self.n_users} users"
            )
        self.arrays[name] = values

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __contains__(self, name: object) -> bool:
        return name in self.arrays

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.arrays)

    def rows(self, users: np.ndarray, derived: dict[str, Callable[["StateView"], np.ndarray]] | None = None) -> "StateView":
        """The state of ``users`` (int array ``(B,)``) as a read-only :class:`StateView`."""
        return StateView(self, users, derived)

    def put(self, users: np.ndarray, updates: dict[str, np.ndarray]) -> None:
        """Write new values of some fields for ``users`` (arrays with a leading ``B`` axis)."""
        arrays = self.arrays
        for name, values in updates.items():
            target = arrays.get(name)
            if target is None:
                raise KeyError(f"a component returned {name!r}, which is not a field of the user state")
            target[users] = values

    def copy(self) -> "UserState":
        return UserState(self.n_users, self.arrays)

    def extend(self, other: "UserState") -> "UserState":
        """A state of this state's users followed by ``other``'s (same fields; ids of
        ``other``'s users shift by ``self.n_users``). Raises ValueError on different fields."""
        if set(self.arrays) != set(other.arrays):
            raise ValueError(f"cannot join states with fields {sorted(self.arrays)} and {sorted(other.arrays)}")
        return UserState(self.n_users + other.n_users,
                         {name: np.concatenate([values, other.arrays[name]]) for name, values in self.arrays.items()})

    def slice(self, lo: int, hi: int) -> "UserState":
        """The users ``lo ≤ id < hi`` as a state of their own (views of these arrays: writes
        through it change this state)."""
        part = UserState.__new__(UserState)
        part.n_users = hi - lo
        part.arrays = {name: values[lo:hi] for name, values in self.arrays.items()}
        return part


class StateView(Mapping):
    """The hidden state of a batch of ``B`` users, read-only, gathered field by field on first
    access: ``view["appetite"]`` is ``(B,)``, ``view["theta"]`` ``(B, K)``.

    ``derived`` names quantities computed from the view on access (the user model defines
    ``wellbeing`` this way), so every component reads them from the one function that defines
    them. A view can also be built from already-gathered arrays (:meth:`of`)."""

    __slots__ = ("_state", "users", "_cache", "_derived", "_rows")

    def __init__(self, state: UserState | None, users: np.ndarray | None,
                 derived: dict[str, Callable[["StateView"], np.ndarray]] | None = None):
        self._state = state
        self.users = users
        self._cache: dict[str, np.ndarray] = {}
        self._derived = derived or {}
        self._rows: int | None = None

    @classmethod
    def of(cls, arrays: dict[str, np.ndarray],
           derived: dict[str, Callable[["StateView"], np.ndarray]] | None = None) -> "StateView":
        """A view over given arrays (each with a leading ``B`` axis): for tests and checks."""
        view = cls(None, None, derived)
        view._cache = {name: _readonly(np.asarray(values)) for name, values in arrays.items()}
        return view

    def __getitem__(self, name: str) -> np.ndarray:
        cache = self._cache
        value = cache.get(name)
        if value is None:
            if self._state is not None and name in self._state.arrays:
                value = self._state.arrays[name][self.users]
                value.flags.writeable = False
            elif name in self._derived:
                value = _readonly(self._derived[name](self))
            else:
                raise KeyError(
                    f"the user state has no field {name!r} (fields: {', '.join(self.fields)})"
                )
            cache[name] = value
        return value

    @property
    def fields(self) -> tuple[str, ...]:
        names = list(self._state.arrays) if self._state is not None else list(self._cache)
        return tuple(dict.fromkeys([*names, *self._cache, *self._derived]))

    def __contains__(self, name: object) -> bool:
        return name in self.fields

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    @property
    def n_rows(self) -> int:
        """``B``, the number of users (rows) in the view."""
        if self._rows is not None:
            return self._rows
        if self.users is not None:
            return int(np.shape(self.users)[0])
        first = next(iter(self._cache.values()), None)
        return 0 if first is None else int(np.shape(first)[0])

    def with_values(self, updates: dict[str, np.ndarray]) -> "StateView":
        """A view of the same rows with some fields replaced (derived quantities recomputed):
        what the state will be once ``updates`` are written."""
        arrays = {name: self[name] for name in self.fields if name not in self._derived}
        arrays.update(updates)
        return StateView.of(arrays, self._derived)

    def repeat(self, n: int) -> "StateView":
        """Every row repeated ``n`` times (row ``i`` becomes rows ``i·n .. i·n + n - 1``),
        fields gathered on access: the state of each user beside each of ``n`` items."""
        parent = self

        def gather(name: str) -> Callable[[StateView], np.ndarray]:
            return lambda _view: np.repeat(parent[name], n, axis=0)

        names = [name for name in self.fields if name not in self._derived]
        view = StateView(None, None, {**{name: gather(name) for name in names}, **self._derived})
        view._rows = self.n_rows * n
        return view


def gather_items(catalog: Any, name: str, ids: np.ndarray) -> np.ndarray:
    """The catalog's attribute ``name`` of items ``ids`` (a fresh array): ids' shape (+ the
    attribute's own axes); ``*_by_topic`` attributes are topic-major, ``(K,)`` + ids' shape."""
    source = getattr(catalog, name)
    return source.take(ids, axis=1 if name.endswith("_by_topic") else 0)


class ItemView:
    """Attributes of items by id, for ids of any shape, gathered on first access.

    True attributes (hidden from policies; the user model reads them): ``topics`` (ids' shape
    + ``(K,)``; ``topics_by_topic`` is ``(K,)`` + ids' shape), ``extremeness``, ``quality``,
    ``clickbait``. Observable: ``length`` (seconds),
    ``log_length``, ``classifier``, ``topics_obs``, ``upload_time``, ``creator``."""

    __slots__ = ("catalog", "ids", "_cache")

    def __init__(self, catalog: Any, ids: np.ndarray):
        self.catalog = catalog
        self.ids = ids
        self._cache: dict[str, np.ndarray] = {}

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("_"):
            raise AttributeError(name)
        cache = self._cache
        value = cache.get(name)
        if value is None:
            value = gather_items(self.catalog, name, self.ids)
            value.flags.writeable = False
            cache[name] = value
        return value

    @property
    def shape(self) -> tuple[int, ...]:
        return np.shape(self.ids)


class Draws:
    """Counter-based draws for a batch of users (row ``i`` is user ``users[i]``).

    ``keys[s]`` and ``counters[s]`` are the per-user keys and draw counters of stream ``s`` for
    every user (arrays ``(n_users,)``, owned by the engine); each draw advances the counters of
    the rows it is taken for. ``rows`` selects some rows of the batch (indices or a mask).
    """

    __slots__ = ("keys", "counters", "users")

    def __init__(self, keys: dict[str, np.ndarray], counters: dict[str, np.ndarray], users: np.ndarray):
        self.keys = keys
        self.counters = counters
        self.users = users

    def _users(self, rows) -> np.ndarray:
        return self.users if rows is None else self.users[rows]

    def uniform(self, stream: str, rows=None) -> np.ndarray:
        """The next uniform in (0, 1) of ``stream`` for each row, shape ``(B,)``."""
        return self._next(stream, rows, False)

    def normal(self, stream: str, rows=None) -> np.ndarray:
        """The next standard normal of ``stream`` for each row (inverse CDF of one uniform)."""
        return self._next(stream, rows, True)

    def _next(self, stream: str, rows, normal: bool) -> np.ndarray:
        """The next draw of ``stream`` for each row: its uniform, or (``normal``) the standard
        normal quantile of it; the rows' counters advance by one."""
        users = self._users(rows)
        ctr = self._counters(stream)
        got = self._compiled(stream, ctr, users, normal)
        if got is not None:
            return got
        c = ctr[users]
        ctr[users] = c + 1
        u = rngmod.uniforms(self.keys[stream][users], c)
        return rngmod.standard_normals(u) if normal else u

    def _counters(self, stream: str) -> np.ndarray:
        """The counters of ``stream``; a KeyError names a stream the draws do not have."""
        try:
            return self.counters[stream]
        except KeyError:
            raise KeyError(
                f"no per-user random stream {stream!r}: a component draws from a stream it does "
                "not declare in its `streams`"
            ) from None

    def _compiled(self, stream: str, ctr: np.ndarray, users: np.ndarray, normal: bool) -> np.ndarray | None:
        """:meth:`uniform` (or :meth:`normal`) by the compiled kernel
        (:func:`recsim.kernels.model.next_uniforms`: the same numbers, one call), or None when
        the kernels are off or the arrays are not the engine's kind (NumPy then decides)."""
        arrays = self._kernel_arrays(self.keys[stream], ctr, users)
        if arrays is None:
            return None
        from ..kernels.model import next_uniforms

        return next_uniforms(*arrays, normal)

    @staticmethod
    def _kernel_arrays(keys, ctr, users) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(keys, counters, users)`` when a compiled kernel may draw from them in place: the
        kernels on, the engine's kinds of arrays (uint64 keys and writable int64 counters, one
        per user; int64 user ids in range). None otherwise: NumPy's code then runs (and raises
        its own error for an id out of range)."""
        if not (kernels.enabled() and type(users) is np.ndarray and users.dtype == np.int64
                and type(ctr) is np.ndarray and ctr.dtype == np.int64 and ctr.ndim == 1
                and type(keys) is np.ndarray and keys.dtype == np.uint64 and keys.shape == ctr.shape
                and ctr.flags.writeable and users.ndim == 1):
            return None
        n = ctr.shape[0]
        if users.shape[0] and (users.max() >= n or users.min() < 0):
            return None
        return keys, ctr, users

    def stream_arrays(self, stream: str, rows=None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(keys, counters, users)`` of ``stream`` for the rows, for a compiled kernel that
        takes the rows' draws itself (advancing ``counters[users]`` as :meth:`uniform` does),
        or None when no kernel may (kernels off, other kinds of arrays, or a user twice among
        the rows: NumPy draws for repeated users at once, a kernel one after another).
        Raises KeyError for a stream the draws do not have."""
        users = self._users(rows)
        arrays = self._kernel_arrays(self.keys[stream], self._counters(stream), users)
        if arrays is None or (users.shape[0] > 1 and np.unique(users).shape[0] != users.shape[0]):
            return None
        return arrays

    def subset(self, rows) -> "Draws":
        """The draws of some rows of the batch."""
        return Draws(self.keys, self.counters, self.users[rows])

    @classmethod
    def for_users(cls, seed: int, streams, users: np.ndarray, n_users: int | None = None) -> "Draws":
        """Fresh draws for ``users`` (ids below ``n_users``) keyed by ``seed``: for tests and
        conformance checks outside an engine."""
        n = int(np.max(users)) + 1 if n_users is None else n_users
        keys = {s: rngmod.user_keys(rngmod.stream_key(seed, 0, f"user:{s}"), np.arange(n)) for s in streams}
        counters = {s: np.zeros(n, dtype=np.int64) for s in streams}
        return cls(keys, counters, np.asarray(users, dtype=np.int64))
