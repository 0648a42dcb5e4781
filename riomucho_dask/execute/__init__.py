"""Running: which scheduler (``schedulers``), worker set-up (``worker``), and
writes computed as one graph on dask's own schedulers (``engine``)."""
