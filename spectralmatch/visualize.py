"""Quick-look pictures of rasters (decimated reads, bounded memory)."""
from __future__ import annotations

import os

import numpy as np


def read_preview(path: str, bands: tuple[int, ...] = (1, 2, 3), max_size: int = 1200
                 ) -> np.ndarray:
    """Read ``bands`` of ``path`` decimated to at most ``max_size`` pixels on the long side.

    Returns:
        Float array (rows, cols, len(bands)) with NaN where any band is nodata.
    """
    from .io.raster import open_raster

    ds = open_raster(path)
    scale = max(ds.RasterXSize, ds.RasterYSize) / max_size
    width = max(1, int(round(ds.RasterXSize / max(scale, 1.0))))
    height = max(1, int(round(ds.RasterYSize / max(scale, 1.0))))
    use = [b if b <= ds.RasterCount else ds.RasterCount for b in bands]
    layers = []
    invalid = np.zeros((height, width), bool)
    for b in use:
        band = ds.GetRasterBand(b)
        arr = band.ReadAsArray(buf_xsize=width, buf_ysize=height).astype(np.float64)
        nodata = band.GetNoDataValue()
        invalid |= ~np.isfinite(arr)
        if nodata is not None:
            invalid |= arr == nodata
        layers.append(arr)
    rgb = np.stack(layers, axis=-1)
    rgb[invalid] = np.nan
    return rgb


def save_before_after_png(before_path: str, after_path: str, png_path: str, *,
                          bands: tuple[int, ...] = (1, 2, 3), max_size: int = 1200,
                          titles: tuple[str, str] = ("Before matching", "After matching")) -> str:
    """Save a side-by-side RGB picture of two rasters with one shared contrast stretch.

    The stretch (2nd–98th percentile per band) comes from the "before" image so that the
    brightness differences between the two pictures are real.

    Args:
        before_path (str): Raster shown on the left.
        after_path (str): Raster shown on the right.
        png_path (str): Output PNG (written atomically).
        bands (tuple[int, ...]): 1-based bands shown as red, green, blue.
        max_size (int): Longest side of each preview in pixels.
        titles (tuple[str, str]): Titles of the two panels.

    Returns:
        str: ``png_path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before = read_preview(before_path, bands, max_size)
    after = read_preview(after_path, bands, max_size)
    lo = np.nanpercentile(before, 2, axis=(0, 1))
    hi = np.nanpercentile(before, 98, axis=(0, 1))
    span = np.where(hi > lo, hi - lo, 1.0)

    def stretch(img: np.ndarray) -> np.ndarray:
        out = np.clip((img - lo) / span, 0, 1)
        alpha = np.isfinite(img).all(axis=-1).astype(float)[..., None]
        return np.concatenate([np.nan_to_num(out), alpha], axis=-1)

    fig, axes = plt.subplots(1, 2, figsize=(12, 6.4))
    for ax, img, title in zip(axes, (before, after), titles, strict=True):
        ax.imshow(stretch(img), interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(png_path))
    os.makedirs(folder, exist_ok=True)
    temp = os.path.join(folder, "." + os.path.basename(png_path) + ".partial.png")
    try:
        fig.savefig(temp, dpi=100)
        os.replace(temp, png_path)
    finally:
        plt.close(fig)
        if os.path.exists(temp):
            os.remove(temp)
    return png_path
