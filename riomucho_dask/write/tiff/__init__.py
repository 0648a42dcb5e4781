"""The TIFF format: IFDs read and written, tiles encoded and decoded by GDAL."""
