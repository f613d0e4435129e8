"""Python wrappers of the compiled kernels in ``spectralmatch._kernels``.

Each module validates and allocates, then hands typed arrays to one Cython kernel that only
computes (``nogil`` loops, no I/O). Nothing outside this package imports the compiled modules.
"""
