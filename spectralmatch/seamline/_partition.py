"""Partition the union of overlapping footprints into one region per image, seams through the
middle of the overlaps.

Method (pure shapely 2 / GEOS + scipy, deterministic):

1. **Arrangement.** The boundaries of all footprints are noded and polygonised into faces;
   every face lies inside the same set of footprints (its *covering set* ``S``, found from an
   interior point). Faces covered by one image go to it.
2. **Nearest own area.** Faces with the same covering set ``S`` (two or more images) form the
   contested region ``R_S``. For each member ``i`` of ``S`` let ``X_i`` be the part of footprint
   ``i`` not covered by the other members of ``S``. A point of ``R_S`` goes to the member whose
   ``X_i`` is nearest: for two images this is the medial line of their overlap, and the rule
   extends unchanged to MultiPolygon overlaps, any number of boundary crossings, three or more
   images and concave footprints. Distances are approximated by a Voronoi diagram (scipy/Qhull)
   of points spaced ``spacing`` apart along the boundaries of the ``X_i``, labelled by image;
   the Voronoi edges between different labels, cut to ``R_S`` (and optionally simplified), are
   the seams. Members whose ``X_i`` is empty (a footprint inside the others) are left out, the
   latest first, so that of two equal footprints the earlier one competes.
3. **One planar partition.** The footprint boundaries and all seams are noded together (one
   snap-rounded overlay) and polygonised; each final face gets the image its covering set and
   nearest seed designate, and the faces of each image are merged (coverage union). Faces of
   one polygonisation never overlap and together cover the union of the footprints, so the
   pieces partition it by construction: no gaps, no double coverage, each piece inside its own
   footprint. A final area check re-assigns any uncovered part (it does not happen in the
   tests; it guards against degenerate faces).

The work is done in local coordinates with overlays snap-rounded on a grid of 1e-12 of the
extent (robust noding: floating-point overlays can misjudge nearly collinear edges and lose
whole pieces). Snapping moves vertices by at most half a grid step, which changes areas by some
1e-11 of the union's area.
"""
from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely import STRtree

from ._footprints import as_multipolygon

logger = logging.getLogger("spectralmatch.seamline")


@dataclass
class Partition:
    """Result of :func:`partition_footprints`.

    Attributes:
        pieces: One MultiPolygon per footprint, in input order (possibly empty).
        regions: ``(covering set, region)`` of every contested region (debug only).
        seeds: ``(covering set, image index, MultiPoint)`` Voronoi seeds (debug only).
    """

    pieces: list[shapely.MultiPolygon]
    regions: list[tuple[tuple[int, ...], shapely.Geometry]] = field(default_factory=list)
    seeds: list[tuple[tuple[int, ...], int, shapely.Geometry]] = field(default_factory=list)


@dataclass
class _Group:
    """How the faces covered by one set of images are assigned."""

    owner: int | None = None  # the single competing member, if there is one
    coords: np.ndarray | None = None  # Voronoi seeds (n, 2) and their image labels (n,)
    labels: np.ndarray | None = None
    tree: object | None = None  # scipy.spatial.cKDTree (imported lazily: slow import)


def overlapping_pairs(footprints: Sequence[shapely.Geometry], grid: float | None = None
                      ) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, whose footprints share a positive area."""
    geoms = np.asarray(footprints, dtype=object)
    left, right = STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if len(left) == 0:
        return []
    areas = shapely.area(shapely.intersection(geoms[left], geoms[right], grid_size=grid))
    return sorted((int(a), int(b)) for a, b, area in zip(left, right, areas, strict=True)
                  if area > 0)


def sample_boundary(lines: shapely.Geometry, spacing: float) -> np.ndarray:
    """Points (n, 2) along ``lines`` at most ``spacing`` apart, both ends of each line included."""
    parts = shapely.get_parts(lines)
    if len(parts) == 0:
        return np.empty((0, 2))
    types = shapely.get_type_id(parts)
    parts = parts[(types == shapely.GeometryType.LINESTRING)
                  | (types == shapely.GeometryType.LINEARRING)]
    if len(parts) == 0:
        return np.empty((0, 2))
    # Linear interpolation along the concatenated vertices (GEOS' per-point interpolation walks
    # each line from its start, quadratic on long footprint boundaries). A unit gap between
    # consecutive lines keeps their distance ranges apart.
    coords, line = shapely.get_coordinates(parts, return_index=True)
    step = np.hypot(*np.diff(coords, axis=0).T)
    new_line = line[1:] != line[:-1]
    step[new_line] = 1.0
    along = np.concatenate([[0.0], np.cumsum(step)])
    first = np.flatnonzero(np.concatenate([[True], new_line]))
    last = np.concatenate([first[1:] - 1, [len(coords) - 1]])
    start, length = along[first], along[last] - along[first]
    keep = length > 0
    start, length = start[keep], length[keep]
    counts = np.maximum(np.ceil(length / spacing).astype(np.int64), 1)
    per_line = counts + 1
    line_of = np.repeat(np.arange(len(start)), per_line)
    offset = np.arange(len(line_of)) - np.repeat(np.cumsum(per_line) - per_line, per_line)
    target = start[line_of] + offset / counts[line_of] * length[line_of]
    return np.column_stack([np.interp(target, along, coords[:, 0]),
                            np.interp(target, along, coords[:, 1])])


def partition_footprints(footprints: Sequence[shapely.Geometry], spacing: float, *,
                         simplify_tolerance: float = 0.0, hole_area: float = 0.0,
                         debug: bool = False) -> Partition:
    """Partition the union of ``footprints`` into one piece per footprint (see module doc).

    Args:
        footprints: Valid polygonal geometries in one CRS (at least one non-empty).
        spacing: Distance between Voronoi seed points along the boundaries (CRS units).
        simplify_tolerance: Douglas-Peucker tolerance applied to the seams (CRS units, 0 = none).
        hole_area: Holes of a footprint smaller than this (CRS units²) do not steer the seams:
            they are filled while the seams are planned (isolated nodata pixels would otherwise
            each pull a bubble of another image around them). They still never belong to
            their own image: such a hole goes to the image(s) covering it.
        debug: Keep the contested regions and seed points in the result.

    Returns:
        The :class:`Partition`; ``pieces[i]`` is a MultiPolygon inside ``footprints[i]``.
    """
    if not spacing > 0:
        raise ValueError(f"spacing must be positive, got {spacing}")
    world = [as_multipolygon(f) for f in footprints]
    origin, grid = _local_frame(world)
    fps = np.array([as_multipolygon(shapely.set_precision(_shift(f, -origin), grid))
                    for f in world], dtype=object)
    planned = np.array([_fill_holes(f, hole_area, grid) for f in fps], dtype=object)
    filled = any(a is not b for a, b in zip(planned, fps, strict=True))
    result = Partition(pieces=[])
    faces, covering = _faces([shapely.boundary(f) for f in planned], planned, grid)
    groups, seams = _plan_groups(faces, covering, spacing, simplify_tolerance, grid,
                                 result if debug else None)
    plan_covering = covering
    if seams or filled:
        faces, covering = _faces([shapely.boundary(f) for f in fps] + seams, fps, grid)
        plan_covering = _covering(faces, planned, grid) if filled else covering
    labels = _label_faces(faces, covering, plan_covering, groups)
    union_area = float(np.sum(shapely.area(faces)))
    pieces = []
    for i in range(len(fps)):
        mine = faces[labels == i]
        pieces.append(_coverage_union(mine, grid) if len(mine) else shapely.MultiPolygon())
    pieces = _fill_gaps(pieces, fps, union_area, grid)
    result.pieces = [shapely.normalize(as_multipolygon(_shift(p, origin))) for p in pieces]
    result.regions = [(g, _shift(r, origin)) for g, r in result.regions]
    result.seeds = [(g, i, _shift(pts, origin)) for g, i, pts in result.seeds]
    return result


def _fill_holes(footprint: shapely.Geometry, max_area: float, grid: float) -> shapely.Geometry:
    """``footprint`` without its holes smaller than ``max_area`` (itself if there are none)."""
    if max_area <= 0 or footprint.is_empty:
        return footprint
    polygons = shapely.get_parts(footprint)
    rebuilt, changed = [], False
    for polygon in polygons:
        holes = [h for h in polygon.interiors if shapely.area(shapely.polygons(h)) >= max_area]
        changed |= len(holes) < len(polygon.interiors)
        rebuilt.append(shapely.Polygon(polygon.exterior, holes))
    if not changed:
        return footprint
    # An island inside a filled hole now overlaps its surroundings: dissolve.
    return as_multipolygon(shapely.union_all(rebuilt, grid_size=grid))


def _local_frame(footprints: Sequence[shapely.Geometry]) -> tuple[np.ndarray, float]:
    """Origin of local coordinates and the precision grid (1e-12 of the extent, power of ten)."""
    minx, miny, maxx, maxy = shapely.total_bounds(footprints)
    extent = max(maxx - minx, maxy - miny)
    if not math.isfinite(extent) or extent <= 0:
        raise ValueError("footprints are empty or degenerate")
    return np.array([minx, miny]), 10.0 ** math.ceil(math.log10(extent * 1e-12))


def _shift(geom: shapely.Geometry, offset: np.ndarray) -> shapely.Geometry:
    return shapely.transform(geom, lambda xy: xy + offset)


def _coverage_union(geoms: np.ndarray, grid: float) -> shapely.Geometry:
    """Union of edge-matched polygons (faces of one polygonisation); overlay as a fallback."""
    if len(geoms) == 1:
        return geoms[0]
    try:
        merged = shapely.coverage_union_all(geoms)
    except shapely.errors.GEOSException:
        merged = None
    # An imperfect coverage shows as an invalid result or lost area.
    if merged is None or not merged.is_valid or not math.isclose(
            merged.area, float(np.sum(shapely.area(geoms))), rel_tol=1e-9):
        merged = shapely.union_all(geoms, grid_size=grid)
    return merged


def _faces(linework: Sequence[shapely.Geometry], footprints: np.ndarray, grid: float
           ) -> tuple[np.ndarray, list[frozenset[int]]]:
    """Faces of the noded ``linework`` inside at least one footprint, and their covering sets."""
    noded = shapely.union_all(linework, grid_size=grid)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.area(faces) > 0] if len(faces) else faces
    if len(faces) == 0:
        return faces, []
    covering = _covering(faces, footprints, grid)
    keep = np.array([bool(c) for c in covering], dtype=bool)
    return faces[keep], [c for c, k in zip(covering, keep, strict=True) if k]


def _covering(faces: np.ndarray, footprints: np.ndarray, grid: float) -> list[frozenset[int]]:
    """For each face, the footprints containing an interior point of it."""
    xy = shapely.get_coordinates(shapely.point_on_surface(faces))
    hits: list[set[int]] = [set() for _ in range(len(faces))]
    candidates = STRtree(shapely.points(xy)).query(footprints)  # (footprint, face) by bbox
    for i in np.unique(candidates[0]).tolist():
        idx = candidates[1][candidates[0] == i]
        shapely.prepare(footprints[i])
        inside = idx[shapely.contains_xy(footprints[i], xy[idx, 0], xy[idx, 1])]
        for f in inside.tolist():
            hits[f].add(i)
    return [frozenset(h) for h in hits]


def _own_faces(group: tuple[int, ...], faces_of: dict[int, list[int]],
               covering: list[frozenset[int]]) -> dict[int, list[int]]:
    """Faces of each competing member of ``group`` that no other competing member covers.

    Members without such faces (a footprint inside the union of the others) are dropped from
    the competition, the latest first, so that of two equal footprints the earlier competes.
    Dropping members only enlarges the others' own areas, so the survivors are recomputed once.
    """
    active = set(group)
    for i in reversed(group):
        others = active - {i}
        if not any(not (covering[f] & others) for f in faces_of[i]):
            active.discard(i)
    own = {}
    for i in group:
        if i in active:
            others = active - {i}
            own[i] = [f for f in faces_of[i] if not (covering[f] & others)]
    return own


def _plan_groups(faces: np.ndarray, covering: list[frozenset[int]], spacing: float,
                 tolerance: float, grid: float, debug: Partition | None
                 ) -> tuple[dict[tuple[int, ...], _Group], list[shapely.Geometry]]:
    """The assignment rule of every covering set and the seams of the contested regions."""
    by_group: dict[tuple[int, ...], list[int]] = defaultdict(list)
    faces_of: dict[int, list[int]] = defaultdict(list)
    for f, cover in enumerate(covering):
        by_group[tuple(sorted(cover))].append(f)
        for i in cover:
            faces_of[i].append(f)
    groups: dict[tuple[int, ...], _Group] = {}
    seams: list[shapely.Geometry] = []
    for group in sorted(by_group, key=lambda g: (len(g), g)):
        if len(group) == 1:
            groups[group] = _Group(owner=group[0])
            continue
        region = _coverage_union(faces[by_group[group]], grid)
        if debug is not None:
            debug.regions.append((group, region))
        own = _own_faces(group, faces_of, covering)
        if len(own) == 1:
            groups[group] = _Group(owner=next(iter(own)))
            continue
        owners = {i: _coverage_union(faces[f], grid) for i, f in own.items()}
        coords, labels = _seeds(region, owners, spacing, group, debug)
        if len(np.unique(labels)) == 1:
            groups[group] = _Group(owner=int(labels[0]))
            continue
        from scipy.spatial import cKDTree

        groups[group] = _Group(coords=coords, labels=labels, tree=cKDTree(coords))
        seam = _seam_lines(region, coords, labels, grid, tolerance)
        if seam is not None:
            seams.append(seam)
    return groups, seams


def _seeds(region: shapely.Geometry, owners: dict[int, shapely.Geometry], spacing: float,
           group: tuple[int, ...], debug: Partition | None) -> tuple[np.ndarray, np.ndarray]:
    """Labelled points along the owners' own areas that can be nearest to the region."""
    distance = min(shapely.distance(region, x) for x in owners.values())
    minx, miny, maxx, maxy = region.bounds
    # Any point of any X_i nearest to some point of the region lies within this margin.
    margin = distance + math.hypot(maxx - minx, maxy - miny) + 2 * spacing
    box = (minx - margin, miny - margin, maxx + margin, maxy + margin)
    coords, labels = [], []
    for i in sorted(owners):
        pts = sample_boundary(shapely.clip_by_rect(shapely.boundary(owners[i]), *box), spacing)
        if len(pts):
            coords.append(pts)
            labels.append(np.full(len(pts), i, dtype=np.int64))
    coords_all, labels_all = np.concatenate(coords), np.concatenate(labels)
    # Equal points of two images (where boundaries cross): the first image keeps the seed.
    _, first = np.unique(coords_all, axis=0, return_index=True)
    first.sort()
    coords_all, labels_all = coords_all[first], labels_all[first]
    keep = _relevant_seeds(region, coords_all, spacing)
    coords_all, labels_all = coords_all[keep], labels_all[keep]
    if debug is not None:
        for i in np.unique(labels_all).tolist():
            debug.seeds.append((group, int(i), shapely.multipoints(coords_all[labels_all == i])))
    return coords_all, labels_all


def _relevant_seeds(region: shapely.Geometry, coords: np.ndarray, spacing: float) -> np.ndarray:
    """Mask of the seeds that can be nearest to some point of ``region``.

    The distance from a point of the region to its nearest seed is 1-Lipschitz, and every point
    of the region lies within ``1.25 h`` of a sample (grid points of step ``h`` inside the region
    plus boundary points ``h`` apart), so ``r = max over samples + 1.25 h`` bounds it; seeds
    farther than ``r`` from the region are never nearest.
    """
    minx, miny, maxx, maxy = region.bounds
    h = max(math.sqrt(max((maxx - minx) * (maxy - miny), 0.0) / 4096.0), spacing)
    gx, gy = np.meshgrid(np.arange(minx + h / 2, maxx, h), np.arange(miny + h / 2, maxy, h))
    gx, gy = gx.ravel(), gy.ravel()
    shapely.prepare(region)
    inside = shapely.contains_xy(region, gx, gy)
    samples = np.concatenate([np.column_stack([gx[inside], gy[inside]]),
                              sample_boundary(shapely.boundary(region), h)])
    from scipy.spatial import cKDTree

    reach = float(cKDTree(coords).query(samples)[0].max()) + 1.25 * h + spacing
    return shapely.dwithin(shapely.points(coords), region, reach)


def _label_boundaries(coords: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Voronoi edges between seeds of different labels, as an (m, 2, 2) array of segments.

    Four far-away frame points make every seed's cell bounded, so every edge is finite; the
    frame's own cells lie far outside the seeds' extent and are ignored.
    """
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    centre = (lo + hi) / 2
    far = 4 * max(float(np.max(hi - lo)), 1e-9)
    frame = centre + far * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    # Centred coordinates keep Qhull precise; vertices are shifted back below.
    points = np.concatenate([coords, frame]) - centre
    from scipy.spatial import QhullError, Voronoi

    try:
        vor = Voronoi(points)
    except QhullError:  # pragma: no cover - precision trouble: joggle the input slightly
        vor = Voronoi(points, qhull_options="Qbb Qc Qz QJ")
    ridge_points = vor.ridge_points
    ridge_vertices = np.asarray(vor.ridge_vertices)
    real = (ridge_points < len(coords)).all(axis=1)
    different = np.zeros(len(ridge_points), dtype=bool)
    different[real] = labels[ridge_points[real, 0]] != labels[ridge_points[real, 1]]
    segments = ridge_vertices[different]
    if len(segments) and (segments < 0).any():  # pragma: no cover - excluded by the frame
        raise RuntimeError("unbounded Voronoi edge between seeds")
    return vor.vertices[segments] + centre


def _seam_lines(region: shapely.Geometry, coords: np.ndarray, labels: np.ndarray, grid: float,
                tolerance: float) -> shapely.Geometry | None:
    """The Voronoi label boundaries inside ``region``, simplified by ``tolerance``."""
    segments = _label_boundaries(coords, labels)
    if len(segments) == 0:
        return None
    lines = shapely.linestrings(segments)
    lines = lines[shapely.length(lines) > 0]
    seams = shapely.clip_by_rect(shapely.multilinestrings(lines), *region.bounds)
    seams = shapely.intersection(seams, region, grid_size=grid)
    if tolerance > 0 and not seams.is_empty:
        # Any linework gives a valid partition (faces are labelled afterwards), so the seams
        # can be simplified freely; the nearest-seed labels then follow the simplified lines.
        seams = shapely.simplify(shapely.line_merge(seams), tolerance, preserve_topology=False)
    return None if seams.is_empty else seams


def _label_faces(faces: np.ndarray, covering: list[frozenset[int]],
                 plan_covering: list[frozenset[int]],
                 groups: dict[tuple[int, ...], _Group]) -> np.ndarray:
    """The image each face goes to.

    The rule of the face's covering set in the plan (footprints with small holes filled)
    decides; if it names an image that does not really cover the face (a filled hole), the rule
    of the true covering set decides, and failing that the first covering image.
    """
    inside = shapely.get_coordinates(shapely.point_on_surface(faces))
    labels = _apply_rules(plan_covering, inside, groups)
    wrong = [f for f in range(len(faces)) if labels[f] not in covering[f]]
    if wrong:
        labels[wrong] = _apply_rules([covering[f] for f in wrong], inside[wrong], groups)
    return labels


def _apply_rules(covering: Sequence[frozenset[int]], inside: np.ndarray,
                 groups: dict[tuple[int, ...], _Group]) -> np.ndarray:
    labels = np.empty(len(covering), dtype=np.int64)
    pending: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for f, cover in enumerate(covering):
        key = tuple(sorted(cover))
        rule = groups.get(key)
        if rule is None:  # a covering set that was not planned (seam snapping, filled holes)
            labels[f] = key[0]
        elif rule.owner is not None:
            labels[f] = rule.owner
        else:
            pending[key].append(f)
    for key, idx in pending.items():
        rule = groups[key]
        labels[idx] = rule.labels[rule.tree.query(inside[idx])[1]]
    return labels


def _fill_gaps(pieces: list[shapely.Geometry], footprints: np.ndarray, union_area: float,
               grid: float) -> list[shapely.Geometry]:
    """Give uncovered parts of the union (if the areas show any) to covering images.

    Each uncovered part goes to the covering images in order of the boundary they share with it
    (longest first), each taking what its footprint covers.
    """
    covered = sum(p.area for p in pieces)
    if union_area - covered <= 1e-10 * union_area:
        return pieces
    union = shapely.union_all(footprints, grid_size=grid)
    gaps = shapely.get_parts(shapely.difference(
        union, shapely.union_all([p for p in pieces if not p.is_empty], grid_size=grid),
        grid_size=grid))
    gaps = gaps[shapely.area(gaps) > 1e-12 * union_area] if len(gaps) else gaps
    logger.debug("assigning %d uncovered part(s), total area %.3g", len(gaps),
                 float(np.sum(shapely.area(gaps))) if len(gaps) else 0.0)
    tree = STRtree(footprints)
    out = list(pieces)
    for gap in gaps:
        candidates = sorted(set(tree.query(gap, predicate="intersects").tolist()))
        shared = [shapely.length(shapely.intersection(shapely.boundary(gap),
                                                      shapely.boundary(out[c]), grid_size=grid))
                  for c in candidates]
        remaining = gap
        for _, c in sorted(zip((-s for s in shared), candidates, strict=True)):
            take = shapely.intersection(remaining, footprints[c], grid_size=grid)
            if take.area > 0:
                out[c] = shapely.union_all([out[c], take], grid_size=grid)
                remaining = shapely.difference(remaining, footprints[c], grid_size=grid)
            if remaining.is_empty:
                break
    return out
