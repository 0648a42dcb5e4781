"""Writes on a dask.distributed cluster (``"distributed"``).

``client.get`` of the blocks' keys (names kept, so the dashboard shows the
user's graph); results stream back with ``as_completed`` and each future is
released once its block is queued.  A block of encoded tiles may stay on its
worker, only a small result of it travelling (its store's ``remote_result``).
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import timings
from ..errors import WindowError
from .writes import Other, Write, block_targets, merged_graph, reraise

__all__ = ["run_distributed", "GATHER"]


#: Finished blocks fetched from the cluster in one round trip (at most).
GATHER = 8


def _remote_result(outs: list):
    """The function to run where a block was computed, when every store the
    block goes to takes only its result (the block stays on the worker)."""
    kept = {store.remote_result for store, _ in outs}
    return kept.pop() if len(kept) == 1 else None


def run_distributed(writes: Sequence[Write], client, others: Sequence[Other] = ()) -> list:
    """Stream the blocks of ``writes`` from the cluster to their stores; return the
    values of ``others``, computed in the same graph."""
    from distributed import as_completed

    targets = block_targets(writes)
    other_keys = [key for other in others for key in other.flat_keys()]
    futures = client.get(merged_graph(writes, list(targets), others), list(targets) + other_keys,
                         sync=False)
    futures, other_futures = futures[:len(targets)], futures[len(targets):]
    # future to gather -> (stores and windows, the block's future when it stays
    # on its worker and only a small result of it travels here)
    pending: dict = {}
    for future, outs in zip(futures, targets.values()):
        remote = _remote_result(outs)
        if remote is None:
            pending[future] = (outs, None)
        else:
            small = client.submit(remote, future, key=f"{remote.__name__}-{future.key}",
                                  priority=1)  # (before more blocks: sizes, then uploads)
            pending[small] = (outs, future)
    del futures
    ready: list = []
    try:
        for batch in as_completed(list(pending), loop=client.loop).batches():
            ready.extend(batch)
            while ready:  # one round trip per few blocks, not per block
                some, ready = ready[:GATHER], ready[GATHER:]
                try:
                    with timings.timed("receive"):
                        blocks = client.gather(some)
                except WindowError as err:
                    reraise(err)
                for future, block in zip(some, blocks):
                    outs, kept = pending.pop(future)
                    for store, window in outs:
                        if kept is None:
                            store.put(block, window)
                        else:
                            store.put_remote(block, kept)
                    future.release()
                del blocks
        try:
            results = dict(zip(other_keys, client.gather(other_futures)))
        except WindowError as err:
            reraise(err)
    except BaseException:
        client.cancel([f for small, (_, kept) in pending.items()
                       for f in (small, kept) if f is not None] + list(other_futures))
        raise
    return [other.value(results) for other in others]
