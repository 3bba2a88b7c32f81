"""Where independent pieces of work run: in this process, in local worker processes, or on Dask.

Work is always split into pieces whose results depend only on their own inputs (a chunk of customers
drawn from its own random streams, a range of Monte Carlo replications), and results come back in
the order of the pieces, so every backend gives identical output.

- ``LocalBackend(workers)``: 1 runs in this process; more spawn worker processes (spawn, not fork:
  LightGBM's OpenMP threads do not survive a fork) that share the machine's cores.
- ``DaskBackend(scheduler)``: ``threads`` or ``processes`` (Dask's local schedulers) or the address of
  a dask.distributed scheduler (``tcp://host:8786``), to spread the pieces over a cluster. Dask is
  imported only here, only when asked for.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, runtime_checkable

from couponmix.errors import CouponmixError
from couponmix.infra.threads import default_threads
from couponmix.infra.validation import check_positive_int

__all__ = [
    "Backend",
    "LOCAL_SCHEDULERS",
    "PR_SET_PDEATHSIG",
    "share_cores",
    "worker_init",
    "new_pool",
    "stop_pool",
    "LocalBackend",
    "DaskBackend",
    "get_backend",
]

LOCAL_SCHEDULERS = ("threads", "processes")
PR_SET_PDEATHSIG = 1


def share_cores(threads: int) -> None:
    """Worker initialiser: this process's share of the cores for couponmix's threads.

    Parameters
    ----------
    threads : int
        Threads couponmix may use in this process (set as ``COUPONMIX_THREADS``).
    """
    os.environ["COUPONMIX_THREADS"] = str(threads)


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this worker when its parent dies (PR_SET_PDEATHSIG), so a killed couponmix leaves
    no worker behind; if the parent is already gone, exit now."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def worker_init(threads: int, parent: int, quiet_logs: bool = False) -> None:
    """Initialiser of couponmix's worker processes: a share of the cores, death with the parent, and Ctrl-C
    left to the parent (which stops the pool), so that an interrupt prints one line, not a traceback per
    worker. With ``quiet_logs`` the worker's couponmix log says warnings only (its parent reports the work).

    Parameters
    ----------
    threads : int
        The worker's threads (``share_cores``).
    parent : int
        The parent's process id; the worker exits at once if its parent is another.
    quiet_logs : bool
    """
    share_cores(threads)
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if quiet_logs:
        import logging

        worker_log = logging.getLogger("couponmix")
        worker_log.setLevel(logging.WARNING)
        worker_log.propagate = False


def new_pool(workers: int, threads: int, quiet_logs: bool = False) -> ProcessPoolExecutor:
    """Spawned worker processes (see ``worker_init``): every command with workers starts them here, so they
    all die with their parent, leave Ctrl-C to it and are ended by the one interrupt watchdog (``cli``).

    Parameters
    ----------
    workers : int
        Worker processes.
    threads : int
        Threads of each worker.
    quiet_logs : bool
        Workers log warnings only.

    Returns
    -------
    ProcessPoolExecutor
    """
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=worker_init,
        initargs=(threads, os.getpid(), quiet_logs),
    )


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool at once: cancel what is queued and end the workers (terminate, then kill after a second).

    Parameters
    ----------
    pool : ProcessPoolExecutor
        A pool from ``new_pool``.
    """
    procs = list(getattr(pool, "_processes", {}).values())
    for p in procs:
        if p.is_alive():
            p.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + 1.0
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1.0)


@runtime_checkable
class Backend(Protocol):
    """Where independent pieces of work run (chunks of a population, Monte Carlo replications).

    ``map(fn, items, on_done)`` returns ``[fn(item) for item in items]`` in order, whatever the backend, so
    results never depend on where the pieces ran; ``on_done(i)`` hears that i pieces are done (for progress).
    ``parallelism`` is how many pieces run at once (None: the cluster decides); 1 runs them one after the
    other in this process, each reported as it ends.

    ``completed(fn, items)`` runs pieces that stand alone (a batch's studies): it yields ``(index, result,
    error)`` as each piece finishes, ``error`` being the exception of a piece whose worker died (the others
    go on where the backend can). Close it (``contextlib.closing``) to stop what still runs.
    """

    @property
    def name(self) -> str:
        """The backend in words, for logs and reports."""
        ...

    @property
    def parallelism(self) -> int | None:
        """How many pieces run at once (None: the cluster decides)."""
        ...

    def map(self, fn: Callable, items: Sequence, on_done: Callable[[int], None] | None = None) -> list:
        """``[fn(item) for item in items]`` in order; ``on_done(i)`` hears that i pieces are done.

        Parameters
        ----------
        fn : callable
            Run on each item (picklable for worker processes).
        items : sequence
            The pieces.
        on_done : callable, optional
            Called with the number of pieces done.

        Returns
        -------
        list
            ``fn(item)`` for each item, in the items' order.
        """
        ...

    def completed(self, fn: Callable, items: Sequence) -> Generator[tuple[int, Any, BaseException | None], None, None]:
        """``(index, result, error)`` of each piece as it finishes (``error``: the exception of a piece whose worker died).

        Parameters
        ----------
        fn : callable
            Run on each item (picklable for worker processes).
        items : sequence
            The pieces.

        Yields
        ------
        (int, object, BaseException or None)
            The piece's index in ``items``, its result (None on error), and the exception of a piece whose
            worker died (else None).
        """
        ...


class LocalBackend:
    """The ``Backend`` of this machine: ``workers`` local processes (1: this process). With ``quiet_logs`` the
    workers' couponmix logs say warnings only (their parent reports the work).

    Parameters
    ----------
    workers : int
        Local processes, >= 1.
    quiet_logs : bool

    Raises
    ------
    CouponmixError
        ``workers`` not a positive integer.
    """

    def __init__(self, workers: int = 1, quiet_logs: bool = False):
        self.workers = check_positive_int(workers, "workers")
        self.quiet_logs = quiet_logs

    @property
    def parallelism(self) -> int:
        """The number of local worker processes (1: pieces run in this process)."""
        return self.workers

    @property
    def name(self) -> str:
        """The backend in words: 'local', or 'local processes (N)'."""
        return "local" if self.workers == 1 else f"local processes ({self.workers})"

    def map(self, fn: Callable, items: Sequence, on_done: Callable[[int], None] | None = None) -> list:
        """``[fn(item) for item in items]`` in order: in this process with one worker (or one item), else in a pool of
        worker processes; ``on_done(i)`` hears as the first i results are in. A failure or Ctrl-C stops the pool.

        Parameters
        ----------
        fn : callable
            Run on each item (picklable for worker processes).
        items : sequence
            The pieces.
        on_done : callable, optional
            Called with the number of pieces done.

        Returns
        -------
        list
            ``fn(item)`` for each item, in the items' order.
        """
        items = list(items)
        if self.workers == 1 or len(items) <= 1:
            out = []
            for i, item in enumerate(items, 1):
                out.append(fn(item))
                if on_done is not None:
                    on_done(i)
            return out
        pool = self._pool(len(items))
        try:
            futures = [pool.submit(fn, item) for item in items]
            out = []
            for i, f in enumerate(futures, 1):
                out.append(f.result())
                if on_done is not None:
                    on_done(i)
        except BaseException:  # Ctrl-C or a failed piece: nothing queued runs on, no worker lingers
            stop_pool(pool)
            raise
        pool.shutdown()
        return out

    def _pool(self, pieces: int) -> ProcessPoolExecutor:
        """Worker processes for ``pieces`` pieces: at most one per piece, each with its share of the cores."""
        workers = min(self.workers, pieces)
        return new_pool(workers, max(1, default_threads() // workers), quiet_logs=self.quiet_logs)

    def completed(self, fn: Callable, items: Sequence) -> Generator[tuple[int, Any, BaseException | None], None, None]:
        """Every piece in a worker process, even with one worker (a piece that kills its process takes only
        itself down), started in order, yielded as each finishes. Closing the iterator early (Ctrl-C, an
        error) stops the workers at once: queued pieces never start.

        Parameters
        ----------
        fn : callable
            Run on each item (picklable for worker processes).
        items : sequence
            The pieces.

        Yields
        ------
        (int, object, BaseException or None)
            The piece's index in ``items``, its result (None on error), and the exception of a piece whose
            worker died (else None).
        """
        items = list(items)
        if not items:
            return
        pool = self._pool(len(items))
        finished = False
        try:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
            for fut in as_completed(futures):
                try:
                    outcome: tuple[int, Any, BaseException | None] = (futures[fut], fut.result(), None)
                except BrokenProcessPool as exc:
                    outcome = (futures[fut], None, exc)
                yield outcome
            finished = True
        finally:
            if finished:
                pool.shutdown()
            else:
                stop_pool(pool)


#: a dask.distributed scheduler address: [scheme://]host:port
ADDRESS = re.compile(r"^(?:(?:tcp|tls|ws|wss|ucx)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}$")
#: seconds to wait for a scheduler to answer (``--scheduler-timeout``)
DEFAULT_SCHEDULER_TIMEOUT = 10.0


def connect(address: str, timeout: float = DEFAULT_SCHEDULER_TIMEOUT):
    """A ``distributed.Client`` of the scheduler at ``address``, or a one-line error naming it within about
    ``timeout`` seconds: unreachable, refused, not a Dask scheduler, or silent after accepting the
    connection (the client is built in a daemon thread, so a scheduler that never answers cannot hang us).

    Parameters
    ----------
    address : str
        The scheduler's address, ``[scheme://]host:port``.
    timeout : float
        Seconds to wait for it.

    Returns
    -------
    distributed.Client

    Raises
    ------
    CouponmixError
        No scheduler answered in time, or the connection failed.
    """
    from distributed import Client

    box: dict = {}

    def attempt() -> None:
        """Build the client into ``box["client"]``, or put the exception in ``box["error"]``."""
        try:
            box["client"] = Client(address, timeout=f"{timeout}s", set_as_default=False)
        except BaseException as exc:  # noqa: BLE001  (anything, even MemoryError from a garbled reply)
            box["error"] = exc

    thread = threading.Thread(target=attempt, name="couponmix-dask-connect", daemon=True)
    thread.start()
    thread.join(timeout + 1)
    if thread.is_alive():
        raise CouponmixError(
            f"the Dask scheduler at {address} did not answer within {timeout:g} s "
            "(--scheduler-timeout): is it a Dask scheduler, and is it running?"
        )
    if "error" in box:
        exc = box["error"]
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:200] or type(exc).__name__
        raise CouponmixError(f"cannot use the Dask scheduler at {address}: {detail}")
    return box["client"]


class _Counter:
    """Counts finished pieces for an ``on_done`` callback (None: counts nothing)."""

    def __init__(self, on_done: Callable[[int], None] | None):
        self.on_done, self.n = on_done, 0

    def tick(self) -> None:
        """One more piece is done."""
        self.n += 1
        if self.on_done is not None:
            self.on_done(self.n)

    def finish(self, total: int) -> None:
        """All ``total`` pieces are done (reported once more only if the count fell short)."""
        if self.n < total:
            self.n = total - 1
            self.tick()


class DaskBackend:
    """The ``Backend`` of a Dask scheduler: its threads, its processes, or a cluster at an address.

    Parameters
    ----------
    scheduler : str
        ``threads``, ``processes`` or a dask.distributed scheduler's address (``tcp://HOST:PORT``).
    timeout : float
        Seconds to wait for a remote scheduler to answer, in (0, 3600].

    Raises
    ------
    CouponmixError
        An empty or malformed scheduler, a port outside 1-65535, a timeout outside (0, 3600], or dask not
        installed.
    """

    parallelism = None

    def __init__(self, scheduler: str, timeout: float = DEFAULT_SCHEDULER_TIMEOUT):
        if not scheduler:
            raise CouponmixError("--scheduler needs threads, processes or a scheduler address")
        if scheduler not in LOCAL_SCHEDULERS and not ADDRESS.match(scheduler):
            raise CouponmixError(f"--scheduler {scheduler!r} is neither threads, processes nor a scheduler address such as tcp://HOST:PORT")
        if scheduler not in LOCAL_SCHEDULERS and not 0 < int(scheduler.rsplit(":", 1)[1]) <= 65535:
            raise CouponmixError(f"--scheduler {scheduler!r}: a port is a number from 1 to 65535")
        if not (isinstance(timeout, (int, float)) and 0 < timeout <= 3600):
            raise CouponmixError(f"--scheduler-timeout must be a number of seconds in (0, 3600], got {timeout!r}")
        self.scheduler = scheduler
        self.timeout = float(timeout)
        try:
            import dask  # noqa: F401  (only to fail early, with a clear message)
        except ImportError:
            raise CouponmixError("the Dask backend needs dask and distributed (pip install 'couponmix[dask]')") from None

    @property
    def name(self) -> str:
        """The backend in words: 'dask (SCHEDULER)'."""
        return f"dask ({self.scheduler})"

    def map(self, fn: Callable, items: Iterable, on_done: Callable[[int], None] | None = None) -> list:
        """``[fn(item) for item in items]`` in order, on Dask's local threads or processes, or on the scheduler at the
        address (connected for this call and closed after); ``on_done(i)`` hears as the first i results are in.

        Parameters
        ----------
        fn : callable
            Run on each item (picklable for worker processes).
        items : sequence
            The pieces.
        on_done : callable, optional
            Called with the number of pieces done.

        Returns
        -------
        list
            ``fn(item)`` for each item, in the items' order.
        """
        items = list(items)
        done = _Counter(on_done)
        if self.scheduler in LOCAL_SCHEDULERS:
            import dask
            from dask.callbacks import Callback

            tasks = [dask.delayed(fn)(item) for item in items]
            keys = {t.key for t in tasks}
            with Callback(posttask=lambda key, *_: done.tick() if key in keys else None):  # on the scheduler's thread
                out = list(dask.compute(*tasks, scheduler=self.scheduler))
        else:
            client = connect(self.scheduler, self.timeout)
            try:
                futures = client.map(fn, items, pure=False)
                out = []
                for f in futures:  # in order: on_done(i) hears as the first i results are in, as for local processes
                    out.append(f.result())
                    done.tick()
            finally:
                client.close()
        done.finish(len(items))
        return out

    def completed(self, fn: Callable, items: Sequence) -> Generator[tuple[int, Any, BaseException | None], None, None]:
        """Dask gathers the pieces together: they are yielded in order once all have finished.

        Parameters
        ----------
        fn : callable
            Run on each item (picklable for worker processes).
        items : sequence
            The pieces.

        Yields
        ------
        (int, object, BaseException or None)
            The piece's index in ``items``, its result (None on error), and the exception of a piece whose
            worker died (else None).
        """
        for i, result in enumerate(self.map(fn, items)):
            yield i, result, None


def get_backend(scheduler: str | None = None, workers: int | None = None, timeout: float = DEFAULT_SCHEDULER_TIMEOUT):
    """``scheduler`` (threads, processes or an address) picks Dask, waiting at most ``timeout`` seconds for a
    remote scheduler to answer; otherwise local with ``workers`` processes.

    Parameters
    ----------
    scheduler : str, optional
        Dask's scheduler (``DaskBackend``).
    workers : int, optional
        Local processes (default 1).
    timeout : float
        Seconds to wait for a remote scheduler.

    Returns
    -------
    LocalBackend or DaskBackend

    Raises
    ------
    CouponmixError
        Both ``scheduler`` and ``workers`` given, or either one invalid.
    """
    if scheduler is not None:
        if workers is not None:
            raise CouponmixError("give --workers (local processes) or --scheduler (Dask), not both")
        return DaskBackend(scheduler, timeout)
    return LocalBackend(1 if workers is None else workers)
