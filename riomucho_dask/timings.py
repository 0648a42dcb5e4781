"""Where the time of a write goes: stage clocks in every task, and the report.

Each stage of a window's work (reading, the run function, encoding, waiting
for the writer) is timed where it runs, in whatever worker thread or process
that is, and added to a per-process table keyed by worker.  The engine
collects the tables after a write (``to_raster(..., report=True)``): from
this process for the local schedulers, from the pool's processes, or from
every worker of a cluster (``client.run``).  The clocks cost about a
microsecond a stage and are always on; only a report collects them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

__all__ = ["STAGES", "CLIENT_STAGES", "Report", "timed", "harvest", "worker_label"]

#: Stages timed in the tasks, in report order.
STAGES = ("read", "run", "encode", "wait", "upload")
#: Stages timed in the process that writes.
CLIENT_STAGES = ("receive", "queue", "write", "finish")
#: What each stage is, for the report.
LABELS = {
    "read": "reading", "run": "run function", "encode": "encoding", "wait": "waiting for writer",
    "upload": "uploading parts",
    "receive": "receiving blocks", "queue": "waiting for the writer", "write": "writing",
    "finish": "finishing",
}

_lock = threading.Lock()
_tables: dict[str, dict[str, float]] = {}  # worker -> stage -> seconds (and "windows")
_local = threading.local()


def worker_label() -> str:
    """Who runs this thread: a cluster worker's address, or host, pid and thread."""
    label = getattr(_local, "label", None)
    if label is None:
        label = f"{socket.gethostname()} pid {os.getpid()} {threading.current_thread().name}"
        if "distributed" in sys.modules:
            try:
                from distributed import get_worker

                label = f"{get_worker().address} {threading.current_thread().name}"
            except (ValueError, ImportError):
                pass
        _local.label = label
    return label


#: What is counted beside the stages' seconds.
COUNTS = ("windows", "pixels_read")


def add(stage: str, seconds: float, **counts: int) -> None:
    """Add ``seconds`` to this thread's ``stage`` (and ``counts``, of :data:`COUNTS`)."""
    label = worker_label()
    with _lock:
        table = _tables.setdefault(label, {})
        table[stage] = table.get(stage, 0.0) + seconds
        for name, value in counts.items():
            table[name] = table.get(name, 0) + value


@contextlib.contextmanager
def timed(stage: str, **counts: int):
    """Time the block inside as ``stage`` of this thread's worker."""
    started = time.perf_counter()
    try:
        yield
    finally:
        add(stage, time.perf_counter() - started, **counts)


def harvest() -> dict[str, dict[str, float]]:
    """This process's tables since the last harvest (which empties them)."""
    global _tables
    with _lock:
        tables, _tables = _tables, {}
    return {label: dict(table) for label, table in tables.items() if table}


def merge(into: dict, tables: dict) -> dict:
    for label, table in tables.items():
        mine = into.setdefault(label, {})
        for stage, seconds in table.items():
            mine[stage] = mine.get(stage, 0) + seconds
    return into


def _is_client(label: str, scheduler: str) -> bool:
    """Whether a table's worker is this process's writing side (not a worker)."""
    if "riomucho-writer" in label:
        return True
    if label.split(" ", 1)[0].startswith(("tcp://", "inproc://", "tls://", "ucx://")):
        return False  # a cluster worker, even one in this process
    return scheduler in ("processes", "distributed") and f" pid {os.getpid()} " in label


def build_report(paths: tuple, wall: float, scheduler: str, tables: dict,
                 tasks: int) -> Report:
    """The :class:`Report` of a write from the tables of every process."""
    workers, client = {}, {}
    for label, table in tables.items():
        here = _is_client(label, scheduler)
        own = {}
        for stage, seconds in table.items():
            if stage in CLIENT_STAGES or here:
                stage = "queue" if stage == "wait" else stage  # (handing blocks to the queue)
                client[stage] = client.get(stage, 0.0) + seconds
            else:
                own[stage] = seconds
        if own:
            workers[label] = own
    return Report(tuple(paths), wall, scheduler, workers, client, tasks)


def _seconds(value: float) -> str:
    return f"{value:8.2f}"


@dataclass
class Report:
    """Where the time of a write went.  ``print(report)`` shows it as a table.

    Attributes
    ----------
    paths : tuple of str
        The outputs written.
    wall : float
        Seconds from the start of the computation to the outputs in place.
    scheduler : str
        ``"sync"``, ``"threads"``, ``"processes"``, ``"distributed"`` or ``"local"``.
    workers : dict
        Per worker (a thread or process of the scheduler), seconds spent in
        each of :data:`STAGES`, ``"windows"``, the run-function calls it
        made, and ``"pixels_read"``, the input pixels it read.  What is left
        of ``wall`` is the worker's scheduling and idle time (:meth:`idle`).
    client : dict
        Seconds of :data:`CLIENT_STAGES` in this process: receiving blocks
        from other processes, waiting to hand them to the writer's queue,
        writing them (the writer thread), finishing the outputs (last bytes,
        COG layout, moving into place, upload).
    tasks : int
        Tasks of the graph that computed blocks (after fusion).
    """

    paths: tuple
    wall: float
    scheduler: str
    workers: dict = field(default_factory=dict)
    client: dict = field(default_factory=dict)
    tasks: int = 0

    @property
    def path(self) -> str:
        """The output, when there is one."""
        return self.paths[0]

    def total(self, stage: str) -> float:
        """Seconds of ``stage`` summed over the workers (or the client's)."""
        if stage in CLIENT_STAGES:
            return float(self.client.get(stage, 0.0))
        return float(sum(table.get(stage, 0.0) for table in self.workers.values()))

    @property
    def windows(self) -> int:
        """Run-function calls, over all workers."""
        return int(sum(table.get("windows", 0) for table in self.workers.values()))

    @property
    def pixels_read(self) -> int:
        """Input pixels read (bands x rows x cols, every input), over all workers."""
        return int(sum(table.get("pixels_read", 0) for table in self.workers.values()))

    def idle(self, worker: str) -> float:
        """What ``worker`` spent outside the stages: scheduling, transfer, idle."""
        table = self.workers[worker]
        return max(0.0, self.wall - sum(table.get(stage, 0.0) for stage in STAGES))

    def __str__(self) -> str:
        names = ", ".join(os.path.basename(str(p)) for p in self.paths)
        plural = "s" if len(self.workers) != 1 else ""
        head = f"{'worker':<40}" + "".join(f"{s:>10}" for s in STAGES)
        lines = [
            f"{names}: {self.wall:.2f} s on {self.scheduler}, {len(self.workers)} worker{plural},"
            f" {self.windows} windows in {self.tasks} tasks",
            f"seconds of each worker's {self.wall:.2f} s: read, run function, encode, wait for "
            "the writer, upload (parts of an S3 output), other (scheduling, transfer, idle)",
            head + f"{'other':>10}{'windows':>9}",
        ]
        for worker in sorted(self.workers):
            table = self.workers[worker]
            cells = [table.get(s, 0.0) for s in STAGES] + [self.idle(worker)]
            lines.append(f"{worker[-40:]:<40}" + "".join(f"{c:10.2f}" for c in cells)
                         + f"{int(table.get('windows', 0)):9d}")
        capacity = self.wall * max(1, len(self.workers)) or 1.0
        shares = [self.total(s) for s in STAGES] + [sum(map(self.idle, self.workers))]
        lines.append(f"{'all workers, % of their time':<40}"
                     + "".join(f"{100 * c / capacity:9.0f}%" for c in shares))
        lines.append("client: " + ", ".join(
            f"{LABELS[s]} {self.client.get(s, 0.0):.2f} s" for s in CLIENT_STAGES)
            + " (writing runs beside the workers, finishing after them)")
        return "\n".join(lines)
