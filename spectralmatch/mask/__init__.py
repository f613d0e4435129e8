"""Masking rasters with vector geometries.

* :mod:`spectralmatch.mask.mask_rasters` — set the pixels outside ("include") or inside
  ("exclude") vector geometries to nodata, per image, window by window.
"""
