"""Pure window and chunk arithmetic: no I/O happens here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import Any

from rasterio.windows import Window

from .errors import WindowGridError, WindowSpecError

__all__ = [
    "as_window",
    "block_chunks",
    "window_chunks",
    "window_groups",
    "group_sizes",
    "chunk_window",
    "offsets",
    "grid_from_windows",
    "slices_to_window",
    "window_to_slices",
]

Chunks = tuple[int, ...]


def as_window(window: Any) -> Window:
    """Return ``window`` as a :class:`rasterio.windows.Window`.

    Accepts a ``Window`` or rio-mucho's legacy
    ``((row_start, row_stop), (col_start, col_stop))`` tuple.

    Examples
    --------
    >>> as_window(((0, 256), (512, 768)))
    Window(col_off=512, row_off=0, width=256, height=256)
    """
    if isinstance(window, Window):
        return window
    try:
        (row_start, row_stop), (col_start, col_stop) = window
        return Window(col_start, row_start, col_stop - col_start, row_stop - row_start)
    except (TypeError, ValueError) as err:
        raise WindowSpecError(
            f"window {window!r} is neither a rasterio Window nor "
            "((row_start, row_stop), (col_start, col_stop))"
        ) from err


def _split(total: int, step: int) -> Chunks:
    full, rest = divmod(total, step)
    return (step,) * full + ((rest,) if rest else ())


def block_chunks(
    height: int,
    width: int,
    block_shape: tuple[int, int],
    chunks: str | int | Sequence[int] = "blocks",
) -> tuple[Chunks, Chunks]:
    """Row and column chunks that follow a raster's block grid.

    Parameters
    ----------
    height, width : int
        Raster size in pixels.
    block_shape : (int, int)
        The raster's block shape ``(rows, cols)``.
    chunks : "blocks", int or (int, int)
        ``"blocks"`` for one chunk per block; otherwise a chunk size in
        pixels, which must be a whole multiple of the block shape (an int
        means the same size for rows and cols), or any size when the
        raster is striped (its blocks span the whole width).  Edge chunks
        are partial.

    Examples
    --------
    >>> block_chunks(600, 500, (256, 256))
    ((256, 256, 88), (256, 244))
    >>> block_chunks(600, 500, (256, 256), chunks=512)
    ((512, 88), (500,))
    """
    block_rows, block_cols = block_shape
    if isinstance(chunks, str):
        if chunks != "blocks":
            raise WindowSpecError(
                f"chunks must be 'blocks', an int or (rows, cols), not {chunks!r}"
            )
        rows, cols = block_rows, block_cols
    else:
        if isinstance(chunks, int):
            rows = cols = chunks
        else:
            try:
                rows, cols = (int(c) for c in chunks)
            except (TypeError, ValueError) as err:
                raise WindowSpecError(
                    f"chunks must be 'blocks', an int or (rows, cols), not {chunks!r}"
                ) from err
        # A striped file's strips span the whole width: any chunk reads whole
        # or partial strips, each once.
        striped = block_cols >= width
        rows_ok = rows > 0 and (striped or rows % block_rows == 0 or rows >= height)
        cols_ok = cols > 0 and (striped or cols % block_cols == 0 or cols >= width)
        if not (rows_ok and cols_ok):
            raise WindowSpecError(
                f"chunks {(rows, cols)} must be whole multiples of the block shape {block_shape}"
            )
    return _split(height, min(rows, height)), _split(width, min(cols, width))


#: Rows a default window of a striped raster holds at least (whole strips).
STRIP_ROWS = 256


def window_chunks(height: int, width: int, block_shape: tuple[int, int]) -> tuple[Chunks, Chunks]:
    """The default windows of ``map_windows``: a raster's blocks, except that
    the strips of a striped raster (blocks that span the whole width) are
    grouped, whole, into windows of at least :data:`STRIP_ROWS` rows.

    Examples
    --------
    >>> window_chunks(600, 500, (256, 256))
    ((256, 256, 88), (256, 244))
    >>> window_chunks(600, 500, (1, 500))            # 1-row strips
    ((256, 256, 88), (500,))
    >>> window_chunks(600, 500, (3, 500))[0][:2]     # whole 3-row strips
    (258, 258)
    """
    block_rows, block_cols = block_shape
    if block_cols >= width and block_rows < STRIP_ROWS:
        block_rows *= -(-STRIP_ROWS // block_rows)
    return block_chunks(height, width, (block_rows, block_cols))


#: Pixels a task's edge is rounded to, when its windows allow: output tiles of
#: 256 or 512 pixels (GeoTIFF, COG) then take whole tasks, no rechunking.
TASK_EDGE = 512


def _per_group(sizes: Chunks, want: int) -> int:
    """Windows of ``sizes`` per group along one axis: about ``want``, rounded
    down to a multiple that makes the group's edge a multiple of TASK_EDGE."""
    want = max(1, min(want, len(sizes)))
    step = sizes[0]
    if step < TASK_EDGE and TASK_EDGE % step == 0:
        whole = TASK_EDGE // step
        if want >= whole:
            want -= want % whole
    return want


def window_groups(row_chunks: Chunks, col_chunks: Chunks, pixels: int) -> tuple[Chunks, Chunks]:
    """Windows per task along rows and columns: neighbouring windows grouped
    into tasks of about ``pixels`` output pixels (at least one window).

    Returns the number of windows of each group, along each axis.  Groups are
    square where they can be, whole rows of windows when a window spans the
    width (strips), and their edges are multiples of 512 pixels when the
    windows divide it.

    Examples
    --------
    >>> window_groups((32,) * 40, (32,) * 40, 512 * 512)
    ((16, 16, 8), (16, 16, 8))
    >>> window_groups((256, 256, 88), (500,), 512 * 500)       # strips: whole rows
    ((2, 1), (1,))
    >>> window_groups((512,) * 3, (512,) * 3, 100)
    ((1, 1, 1), (1, 1, 1))
    """
    area = max(1, max(row_chunks, default=1) * max(col_chunks, default=1))
    windows = max(1, pixels // area)
    if len(col_chunks) == 1:
        cols = 1
        rows = _per_group(row_chunks, windows)
    else:
        side = max(1, int(round(windows ** 0.5)))
        cols = _per_group(col_chunks, side)
        rows = _per_group(row_chunks, max(1, windows // cols))
    return _split(len(row_chunks), rows), _split(len(col_chunks), cols)


def group_sizes(chunks: Chunks, groups: Chunks) -> Chunks:
    """The pixel sizes of groups of consecutive chunks.

    Examples
    --------
    >>> group_sizes((32, 32, 32, 7), (2, 2))
    (64, 39)
    """
    edges = offsets(chunks)
    starts = offsets(groups)
    return tuple(edges[b] - edges[a] for a, b in zip(starts[:-1], starts[1:]))


def offsets(sizes: Iterable[int]) -> tuple[int, ...]:
    """Start offsets of consecutive chunks, and the end of the last.

    Examples
    --------
    >>> offsets((32, 32, 7))
    (0, 32, 64, 71)
    """
    return (0, *accumulate(sizes))


def chunk_window(row_offsets: Sequence[int], col_offsets: Sequence[int], i: int,
                 j: int) -> Window:
    """The window of chunk ``(i, j)`` of a grid given by its :func:`offsets`.

    Examples
    --------
    >>> chunk_window((0, 32, 64), (0, 20, 30), 1, 1)
    Window(col_off=20, row_off=32, width=10, height=32)
    """
    return Window(col_offsets[j], row_offsets[i], col_offsets[j + 1] - col_offsets[j],
                  row_offsets[i + 1] - row_offsets[i])


def grid_from_windows(
    windows: Sequence[Any], height: int, width: int
) -> tuple[Chunks, Chunks, dict[tuple[int, int], tuple[Any, Any]]]:
    """Chunks for a list of windows that tile a raster as a grid.

    Parameters
    ----------
    windows : sequence
        ``Window`` objects, legacy window tuples, or ``(window, ij)`` pairs.
    height, width : int
        Raster size; the windows must cover it exactly, once, as a grid of
        rows and columns (sizes may vary, as with partial edge blocks).

    Returns
    -------
    row_chunks, col_chunks : tuple of int
    lookup : dict
        ``(i, j)`` chunk index -> ``(window as given, ij)``; ``ij`` is the
        one given with the window, or ``(i, j)`` when none was.

    Raises
    ------
    WindowGridError
        When the windows leave gaps, overlap, leave the raster or are not
        a grid.

    Examples
    --------
    >>> rows, cols, _ = grid_from_windows(
    ...     [Window(0, 0, 5, 4), Window(5, 0, 3, 4)], height=4, width=8)
    >>> rows, cols
    ((4,), (5, 3))
    """
    if not windows:
        raise WindowGridError("no windows given")
    given = []
    for item in windows:
        if isinstance(item, Window) or _is_legacy(item):
            window, ij = item, None
        else:
            try:
                window, ij = item
            except (TypeError, ValueError) as err:
                raise WindowSpecError(
                    f"{item!r} is not a window nor a (window, ij) pair"
                ) from err
        given.append((window, ij, as_window(window)))

    row_edges = sorted({(int(w.row_off), int(w.row_off + w.height)) for _, _, w in given})
    col_edges = sorted({(int(w.col_off), int(w.col_off + w.width)) for _, _, w in given})
    row_chunks = _contiguous(row_edges, height, "rows")
    col_chunks = _contiguous(col_edges, width, "columns")
    row_index = {edge: i for i, edge in enumerate(row_edges)}
    col_index = {edge: j for j, edge in enumerate(col_edges)}

    lookup: dict[tuple[int, int], tuple[Any, Any]] = {}
    for window, ij, w in given:
        key = (
            row_index[(int(w.row_off), int(w.row_off + w.height))],
            col_index[(int(w.col_off), int(w.col_off + w.width))],
        )
        if key in lookup:
            raise WindowGridError(f"window {window!r} is given twice")
        lookup[key] = (window, key if ij is None else ij)
    expected = len(row_chunks) * len(col_chunks)
    if len(lookup) != expected:
        raise WindowGridError(
            f"{len(lookup)} windows do not fill the {len(row_chunks)} x {len(col_chunks)} "
            "grid their edges make: windows with gaps or subsets of a grid are not a grid"
        )
    return row_chunks, col_chunks, lookup


def _is_legacy(item: Any) -> bool:
    try:
        (a, b), (c, d) = item
        return all(isinstance(v, int) for v in (a, b, c, d))
    except (TypeError, ValueError):
        return False


def _contiguous(edges: list[tuple[int, int]], total: int, what: str) -> Chunks:
    position = 0
    sizes = []
    for start, stop in edges:
        if start != position or stop <= start:
            raise WindowGridError(
                f"window {what} {start}:{stop} do not continue from {position}: "
                f"windows must tile the raster's {total} {what} without gaps or overlaps"
            )
        sizes.append(stop - start)
        position = stop
    if position != total:
        raise WindowGridError(f"windows cover {what} 0:{position} of 0:{total}")
    return tuple(sizes)


def window_to_slices(window: Window) -> tuple[slice, slice]:
    """Row and column slices of a window.

    Examples
    --------
    >>> window_to_slices(Window(10, 20, 5, 4))
    (slice(20, 24, None), slice(10, 15, None))
    """
    window = as_window(window)
    row, col = int(window.row_off), int(window.col_off)
    return slice(row, row + int(window.height)), slice(col, col + int(window.width))


def slices_to_window(rows: slice, cols: slice) -> Window:
    """The window that a pair of row and column slices selects.

    Examples
    --------
    >>> slices_to_window(slice(20, 24), slice(10, 15))
    Window(col_off=10, row_off=20, width=5, height=4)
    """
    return Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
