"""Seamlines: one mosaic polygon per image, with seams on the centre lines of the overlaps.

:func:`spectralmatch.seamline.voronoi_center_seamline.voronoi_center_seamline` extracts each
image's valid-pixel footprint (``_footprints``), partitions the union of the footprints with
Voronoi centre lines (``_partition``) and writes the ``seamlines`` GeoPackage layer.
"""
