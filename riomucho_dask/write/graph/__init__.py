"""The dask graph of an output's tiles and overview levels."""
