"""Radiometric matching of overlapping rasters (global regression, local block adjustment)."""
