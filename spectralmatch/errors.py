"""The exception family of spectralmatch.

Every problem a user can fix (a missing file, a bad parameter, incompatible rasters) raises a
:class:`SpectralMatchError`, a ``ValueError`` subclass, with a message naming the file, band and
parameter at fault and what would be accepted.
"""


class SpectralMatchError(ValueError):
    """A user-facing error: bad input, bad parameter or incompatible rasters."""


class ParameterError(SpectralMatchError):
    """A parameter has a value that is not accepted."""


class RasterError(SpectralMatchError):
    """An input raster cannot be used (unreadable, not georeferenced, incompatible)."""


class PathError(SpectralMatchError):
    """Input or output paths are invalid (nothing found, collisions, templates)."""


class WorkerError(RuntimeError):
    """A task failed inside a worker; the message names the image and window."""
