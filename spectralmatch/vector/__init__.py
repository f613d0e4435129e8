"""Vector utilities.

* :mod:`spectralmatch.vector.merge_vectors` — combine vector files: concatenate their features
  ("keep"), dissolve them into one geometry ("union"), or overlay-intersect them
  ("intersection"), reprojecting every layer to the first layer's CRS.
"""
