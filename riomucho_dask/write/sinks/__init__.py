"""Where the bytes go: a local file, part files, an object store's multipart upload.

A writer that hands its bytes over in parts does it through one small
contract, :class:`PartsSink` (odc-geo's ``PartsWriter``): ``sink(number,
data)`` places one part and says where it is (a :class:`Part`),
``sink.finalise(parts)`` once every part is in, ``sink.abort()`` on a failure.
Two sinks implement it:

- :class:`~riomucho_dask.write.sinks.parts.PartSink`: part files the encoding
  tasks append their tiles to, beside the output, copied into it by the
  writer (``processes``, and clusters whose workers see the directory);
- :class:`~riomucho_dask.write.sinks.multipart.Upload`: the parts of one
  multipart upload to object storage, uploaded from the workers.

The output file itself (:class:`~riomucho_dask.write.sinks.output.OutputFile`:
temporary files, publishing, a full disk said so) is what these feed, not a
sink of parts: the writer that lays out a file writes it through its own
handle; the output file drops the part sinks with its temporary files
(:meth:`PartsSink.abort`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

__all__ = ["Part", "PartsSink"]


class Part(NamedTuple):
    """Where one part went.

    Attributes
    ----------
    number : int
        The part's number, as given to the sink (1, 2, ... in file order for
        an upload).
    ref : str
        What finds it again: a part file's path, an upload's part identifier
        (its ETag).
    offset : int
        Where its bytes start in ``ref`` (0 for an uploaded part).
    size : int
        Its length in bytes.
    """

    number: int
    ref: str
    offset: int
    size: int


class PartsSink(Protocol):
    """What a writer asks of a sink of parts (odc-geo's ``PartsWriter``)."""

    def __call__(self, number: int, data: bytes) -> Part:
        """Place ``data`` as part ``number``; where it went."""

    def finalise(self, parts: Sequence[Part]) -> None:
        """Every part is in: make the output of ``parts`` (in number order)."""

    def abort(self) -> bool:
        """Drop every part (idempotent); whether the sink could."""
