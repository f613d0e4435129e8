"""The least-squares gain/offset model of global regression (ALGORITHMS.md §2.6).

Unknowns per band: a gain ``a_k`` and an offset ``b_k`` for every image of the model. Rows:

* per overlap pair (i, j) with at least one included image, weight ``w = s`` (pixel count of the
  overlap, or 1 without ``weight_by_size``):
  ``w·c_m·(a_i·m_ij + b_i − a_j·m_ji − b_j) = 0`` and ``w·c_s·(a_i·σ_ij − a_j·σ_ji) = 0``;
* per included image k, weight ``p = Σw / (2n)`` (1 when no pair is used):
  ``p·(a_k·M_k + b_k) = p·M_k`` and ``p·a_k·S_k = p·S_k``.

The system is solved directly with ``numpy.linalg.lstsq`` for the *change* from the identity
(``a = 1, b = 0``): when the rows do not determine every unknown, the minimum-norm change keeps
the undetermined directions at "unchanged". Images that no used pair connects to an included
image are left out of the system and keep ``a = 1, b = 0`` (with a warning naming them).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger("spectralmatch")


@dataclass(frozen=True)
class BandStats:
    """Per-band statistics of a set of pixels: mean, population std (ddof 0) and count.

    Attributes:
        mean: float64 array (bands,).
        std: float64 array (bands,).
        size: int64 array (bands,): number of valid pixels.
    """

    mean: np.ndarray
    std: np.ndarray
    size: np.ndarray

    @classmethod
    def from_sums(cls, count: np.ndarray, total: np.ndarray, total_sq: np.ndarray) -> BandStats:
        """Statistics from float64 count, sum and sum of squares (empty bands: 0, 0, 0)."""
        count = np.asarray(count, dtype=np.float64)
        safe = np.where(count > 0, count, 1.0)
        mean = np.where(count > 0, total / safe, 0.0)
        var = np.where(count > 0, total_sq / safe - mean * mean, 0.0)
        return cls(mean=mean, std=np.sqrt(np.maximum(var, 0.0)),
                   size=np.rint(count).astype(np.int64))

    @property
    def band_count(self) -> int:
        return len(self.mean)


@dataclass
class ModelSolution:
    """Result of :func:`solve_global_model`.

    Attributes:
        scale: (images, bands) gains in model order.
        offset: (images, bands) offsets in model order.
        unchanged: image name -> bands (0-based) where it was left unchanged because it is not
            connected to any included image.
        used_pairs: band -> list of (name_i, name_j) pairs that contributed rows.
    """

    scale: np.ndarray
    offset: np.ndarray
    unchanged: dict[str, list[int]] = field(default_factory=dict)
    used_pairs: dict[int, list[tuple[str, str]]] = field(default_factory=dict)


def model_pairs(names: Sequence[str],
                overlap: Mapping[tuple[str, str], BandStats]) -> list[tuple[int, int]]:
    """Index pairs (i < j in model order) with statistics stored in both directions."""
    index = {name: k for k, name in enumerate(names)}
    pairs = set()
    for a, b in overlap:
        if a in index and b in index and (b, a) in overlap and a != b:
            i, j = sorted((index[a], index[b]))
            pairs.add((i, j))
    return sorted(pairs)


def _components(n: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """Connected-component label of every node (union-find)."""
    parent = list(range(n))

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for i, j in edges:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return [find(k) for k in range(n)]


def solve_global_model(names: Sequence[str], included: set[str] | frozenset[str],
                       whole: Mapping[str, BandStats],
                       overlap: Mapping[tuple[str, str], BandStats], *,
                       custom_mean_factor: float = 1.0, custom_std_factor: float = 1.0,
                       weight_by_size: bool = True, min_overlap_size: int = 0,
                       band_count: int | None = None) -> ModelSolution:
    """Solve the global regression model separately for every band.

    Args:
        names: Image names in model order (inputs first, then images only in a loaded model).
        included: Names whose whole-image statistics constrain the model.
        whole: Name -> whole-image statistics (needed for every included image).
        overlap: (a, b) -> statistics of image ``a`` over the pixels it shares with ``b``; a
            pair is used only when both directions are present.
        custom_mean_factor: Weight factor of the overlap mean rows.
        custom_std_factor: Weight factor of the overlap std rows.
        weight_by_size: Weight pair rows by the overlap size (else 1).
        min_overlap_size: Pairs with fewer jointly valid pixels (per band) are not used.
        band_count: Number of bands (default: from the statistics).

    Returns:
        The :class:`ModelSolution`.
    """
    n = len(names)
    if band_count is None:
        any_stats = next(iter(whole.values()), None) or next(iter(overlap.values()), None)
        band_count = any_stats.band_count if any_stats is not None else 0
    scale = np.ones((n, band_count))
    offset = np.zeros((n, band_count))
    solution = ModelSolution(scale, offset)
    pairs = model_pairs(names, overlap)
    is_included = np.array([name in included for name in names], dtype=bool)
    for band in range(band_count):
        used = []
        for i, j in pairs:
            s = int(overlap[(names[i], names[j])].size[band])
            s_back = int(overlap[(names[j], names[i])].size[band])
            if s != s_back:
                logger.debug("band %d: overlap sizes of %s/%s differ (%d vs %d); using %d",
                             band, names[i], names[j], s, s_back, min(s, s_back))
                s = min(s, s_back)
            if s <= 0 or s < min_overlap_size or not (is_included[i] or is_included[j]):
                continue
            used.append((i, j, float(s) if weight_by_size else 1.0))
        solution.used_pairs[band] = [(names[i], names[j]) for i, j, _ in used]
        labels = _components(n, [(i, j) for i, j, _ in used])
        anchored = {labels[k] for k in range(n) if is_included[k]}
        active = [k for k in range(n) if labels[k] in anchored]
        for k in range(n):
            if labels[k] not in anchored:
                solution.unchanged.setdefault(names[k], []).append(band)
        if not active:
            continue
        column = {k: c for c, k in enumerate(active)}
        total_weight = sum(w for _, _, w in used)
        p = total_weight / (2 * n) if total_weight > 0 else 1.0
        rows, targets = [], []
        m = len(active)
        for i, j, w in used:
            sij, sji = overlap[(names[i], names[j])], overlap[(names[j], names[i])]
            row = np.zeros(2 * m)
            wm = w * custom_mean_factor
            row[2 * column[i]] = wm * sij.mean[band]
            row[2 * column[i] + 1] = wm
            row[2 * column[j]] = -wm * sji.mean[band]
            row[2 * column[j] + 1] = -wm
            rows.append(row)
            targets.append(0.0)
            row = np.zeros(2 * m)
            ws = w * custom_std_factor
            row[2 * column[i]] = ws * sij.std[band]
            row[2 * column[j]] = -ws * sji.std[band]
            rows.append(row)
            targets.append(0.0)
        for k in active:
            if not is_included[k]:
                continue
            stats = whole[names[k]]
            mean, std = float(stats.mean[band]), float(stats.std[band])
            row = np.zeros(2 * m)
            row[2 * column[k]] = p * mean
            row[2 * column[k] + 1] = p
            rows.append(row)
            targets.append(p * mean)
            row = np.zeros(2 * m)
            row[2 * column[k]] = p * std
            rows.append(row)
            targets.append(p * std)
        a_matrix = np.array(rows)
        x0 = np.tile([1.0, 0.0], m)
        residual = np.array(targets) - a_matrix @ x0
        delta, _, rank, _ = np.linalg.lstsq(a_matrix, residual, rcond=None)
        if rank < 2 * m:
            logger.warning("band %d: the statistics do not determine every gain and offset "
                           "(rank %d of %d); undetermined parts are kept unchanged", band + 1,
                           rank, 2 * m)
        x = x0 + delta
        for k in active:
            scale[k, band] = x[2 * column[k]]
            offset[k, band] = x[2 * column[k] + 1]
    return solution
