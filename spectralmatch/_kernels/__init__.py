"""Compiled Cython kernels (built from ``src_cython/`` by CMake at install time)."""
