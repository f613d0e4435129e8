# cython: language_level=3
"""Fused pixel types shared by the kernels (every GDAL data type numpy can hold)."""
from libc.stdint cimport int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t, int64_t, uint64_t

ctypedef fused pixel_t:
    uint8_t
    int8_t
    uint16_t
    int16_t
    uint32_t
    int32_t
    int64_t
    uint64_t
    float
    double
