"""Compiled kernels: the model's and the built-in policies' per-decision arithmetic as loops
compiled by numba, run over a batch of users by both engines.

Every kernel here computes exactly what the NumPy code it stands in for computes — the same
operations in the same order, no fused multiply-adds (numba without ``fastmath``), the same
special functions (Cephes' ``ndtr``/``ndtri`` as SciPy has them) — so a run gives the same
bits with or without kernels (``tests/test_kernels.py`` runs both engines both ways and
compares every output). The NumPy code stays: it is what runs when the kernels are off, and
it is the definition the kernels are tested against.

Which code runs:

* numba importable (a dependency of ``recsim-engagement``): the kernels, compiled on first use
  (about 15 s for all of them on a busy 2-core machine) and cached on disk (numba's
  ``cache=True``: next to this package, or in the user's cache folder when the package folder
  is read-only, or ``NUMBA_CACHE_DIR``), so later processes load them (about a second). With
  nowhere to write, they are compiled in every process, with one warning.
* a kernel calls only kernels of its own file: numba's cache checks only the file a function
  is defined in, so a kernel compiled against another file's would go stale when that file
  changes (``tests/test_kernels.py`` checks this rule).
* ``RECSIM_KERNELS=numpy`` in the environment, or :func:`use` ``("numpy")``: the NumPy code.
  Any other value is an error (:class:`KernelConfigError`).
* numba not importable: the NumPy code, with one :class:`KernelWarning` saying so (once per
  run: worker processes started after it inherit that it was shown).

Only the built-in pieces have kernels (the default user model's components, the built-in
policies' scoring, the candidate draw). A user model or policy of one's own runs its own
NumPy code unchanged.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator

__all__ = ["NUMBA_VERSION", "KernelConfigError", "KernelWarning", "backend", "enabled", "jit", "use"]


class KernelWarning(UserWarning):
    """The compiled kernels are unavailable; recsim runs its NumPy code (slower)."""


# numba is imported on first use (importing it takes about half a second, which commands that
# simulate nothing, such as `recsim validate`, should not pay)
_numba = None
_IMPORT_ERROR = ""
_loaded = False
NUMBA_VERSION: str | None = None


def _load():
    """The numba module, imported on the first call; None if it cannot be imported."""
    global _numba, _IMPORT_ERROR, _loaded, NUMBA_VERSION
    if not _loaded:
        _loaded = True
        try:
            import numba

            _numba, NUMBA_VERSION = numba, numba.__version__
        except Exception as exc:  # noqa: BLE001 - ImportError, or a numba that cannot load LLVM
            _IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
    return _numba


_CHOICES = ("numba", "numpy")


class KernelConfigError(ValueError):
    """``RECSIM_KERNELS`` names no backend (bad input: the CLI exits 2)."""


def _requested_backend() -> str:
    name = os.environ.get("RECSIM_KERNELS", "numba").strip().lower() or "numba"
    if name not in _CHOICES:
        raise KernelConfigError(
            f"the environment variable RECSIM_KERNELS is {name!r}; expected one of: {', '.join(_CHOICES)} "
            "(numba: the compiled kernels, the default; numpy: the NumPy code)")
    return name


_requested: str | None = None  # read from the environment on first use
#: set in the environment once the missing-numba warning was shown, so that worker processes
#: started afterwards (they inherit the environment) do not repeat it
_WARNED = "RECSIM_KERNELS_WARNED"
_warned = False


def enabled() -> bool:
    """True if the compiled kernels run (numba importable and not switched off)."""
    global _warned, _requested
    if _requested is None:
        _requested = _requested_backend()
    if _requested != "numba":
        return False
    if _load() is None:
        if not _warned and not os.environ.get(_WARNED):
            _warned = True
            os.environ[_WARNED] = "1"
            warnings.warn(
                f"numba is not importable ({_IMPORT_ERROR}); recsim runs its NumPy code instead of "
                "its compiled kernels: the same results, slower. "
                "Install numba (pip install numba), or set RECSIM_KERNELS=numpy to silence this.",
                KernelWarning, stacklevel=3)
        return False
    return True


def backend() -> str:
    """``"numba"`` or ``"numpy"``: the code that runs now."""
    return "numba" if enabled() else "numpy"


@contextlib.contextmanager
def use(name: str) -> Iterator[None]:
    """Run the block with the kernels (``"numba"``) or the NumPy code (``"numpy"``) — for
    tests and comparisons. Worker processes started inside the block inherit the choice
    (``RECSIM_KERNELS`` is set for the block's duration). Raises ValueError for another name."""
    global _requested
    if name not in _CHOICES:
        raise ValueError(f"kernel backend must be one of {', '.join(_CHOICES)}, not {name!r}")
    before, before_env = _requested, os.environ.get("RECSIM_KERNELS")
    _requested = name
    os.environ["RECSIM_KERNELS"] = name
    try:
        yield
    finally:
        _requested = before
        if before_env is None:
            os.environ.pop("RECSIM_KERNELS", None)
        else:
            os.environ["RECSIM_KERNELS"] = before_env


def jit(function: Callable) -> Callable:
    """``numba.njit`` with the project's settings: cached on disk, no ``fastmath`` (so no fused
    multiply-adds or reassociation: the NumPy code's roundings), NumPy's error model (a
    division by zero gives inf/nan as NumPy does, not an exception). Without numba the plain
    Python function is returned (never called then: callers check :func:`enabled`)."""
    numba = _load()
    if numba is None:
        return function
    try:
        return numba.njit(cache=True, error_model="numpy", nogil=True)(function)
    except RuntimeError as exc:  # "cannot cache function ...: no locator available": nowhere to write
        global _cache_warned
        if not _cache_warned:
            _cache_warned = True
            warnings.warn(
                f"numba cannot cache recsim's compiled kernels ({exc}); they are compiled again in "
                "every process (slower start). Set NUMBA_CACHE_DIR to a writable folder to cache them.",
                KernelWarning, stacklevel=2)
        return numba.njit(cache=False, error_model="numpy", nogil=True)(function)


_cache_warned = False
