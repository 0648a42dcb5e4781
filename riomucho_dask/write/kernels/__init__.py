"""Pure functions of numpy arrays: overview levels (GDAL's resamplings), statistics, validity."""
