"""Errors about the cluster tasks run on, found before any task runs (exit code 2 at the
command line). Kept apart from :mod:`recsim.distributed` so that they can be named without
the optional Dask extra installed."""

from __future__ import annotations

__all__ = ["ClusterSetupError", "DaskMissing", "SchedulerUnreachable", "FolderNotShared"]


class ClusterSetupError(RuntimeError):
    """The cluster cannot be used, found before any task runs (exit code 2 at the command
    line): the Dask extra missing, the scheduler unreachable, the run folder not shared."""


class DaskMissing(ClusterSetupError):
    """The optional Dask extra is not installed."""

    def __init__(self, message: str = "the Dask executor needs the optional extra: "
                                      "pip install 'recsim-engagement[dask]'"):
        super().__init__(message)


class SchedulerUnreachable(ClusterSetupError):
    """The Dask scheduler at ``address`` could not be reached (or the address is malformed);
    ``reason`` is Dask's own explanation. The message names Dask, the address and what to do."""

    def __init__(self, address: str, reason: str):
        self.address = address
        self.reason = reason
        super().__init__(
            f"cannot reach the Dask scheduler at {address!r}: {reason} — is it running, and is the "
            "address right (tcp://host:port, as `dask scheduler` prints it)? "
            "The wait is set by DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"
        )

    def __reduce__(self):
        return (type(self), (self.address, self.reason), self.__dict__)


class FolderNotShared(ClusterSetupError):
    """Some Dask workers cannot see the run folder at ``folder`` (an absolute path on the
    client): they would write their partitions where the client never finds them. ``workers``
    are their addresses."""

    def __init__(self, folder: str, workers: list[str]):
        self.folder = folder
        self.workers = list(workers)
        shown = ", ".join(self.workers[:3]) + (f" and {len(self.workers) - 3} more" if len(self.workers) > 3 else "")
        super().__init__(
            f"the Dask worker(s) {shown} cannot see the run folder {folder}: tasks write their "
            "partitions straight into it, so on a cluster --out must be on a file system every "
            "worker shares, at the same absolute path"
        )

    def __reduce__(self):
        return (type(self), (self.folder, self.workers), self.__dict__)
