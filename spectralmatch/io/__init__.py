"""Input/output helpers: raster access, windows, writers, vector masks and path resolution."""
