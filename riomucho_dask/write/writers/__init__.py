"""What puts finished blocks into a file: a GDAL dataset, or encoded tiles placed."""
