"""``python -m riomucho_dask.cli``: the ``riomucho-dask`` command."""

from . import main

if __name__ == "__main__":  # pragma: no cover
    main()
