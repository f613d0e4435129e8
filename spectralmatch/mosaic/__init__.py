"""Mosaic utilities: put images on a common pixel grid and merge them into one raster.

* :mod:`spectralmatch.mosaic.align_rasters` — resample/reproject every input onto a grid of a
  common resolution (optionally snapped to multiples of it, like ``gdalwarp -tap``).
* :mod:`spectralmatch.mosaic.merge_rasters` — one mosaic on the union extent; later inputs are
  drawn on top of earlier ones.

Both use GDAL's warper through in-memory warped VRTs, read window by window, and write their
outputs atomically with :class:`spectralmatch.io.writer.RasterWriter`.
"""
