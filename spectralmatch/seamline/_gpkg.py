"""Writing small vector layers to a GeoPackage atomically (pyogrio, no geopandas).

All layers go into a temporary ``.<name>.partial.gpkg`` beside the target, which is renamed to
the final name once complete; on any error the temporary file is removed and the final path is
left as it was.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pyogrio.raw
import shapely

from ..io.writer import partial_path


def _to_multi(geom: shapely.Geometry, kind: str) -> shapely.Geometry:
    """``geom`` as the multi type ``kind`` so that every feature of a layer has one type."""
    type_ids = {"MultiPolygon": (shapely.GeometryType.POLYGON, shapely.multipolygons),
                "MultiPoint": (shapely.GeometryType.POINT, shapely.multipoints),
                "MultiLineString": (shapely.GeometryType.LINESTRING, shapely.multilinestrings)}
    part_type, build = type_ids[kind]
    parts = shapely.get_parts(geom)
    parts = parts[shapely.get_type_id(parts) == part_type] if len(parts) else parts
    return build(parts) if len(parts) else shapely.from_wkt(f"{kind.upper()} EMPTY")


def write_layers(path: str, layers: Sequence[tuple], crs: str) -> None:
    """Write ``(name, geometries, {field: values}, type)`` layers to a new GeoPackage atomically."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temp = partial_path(path)
    _remove(temp)
    try:
        for layer, geoms, fields, kind in layers:
            wkb = np.array([shapely.to_wkb(_to_multi(g, kind)) for g in geoms], dtype=object)
            names = list(fields)
            values = [np.array(fields[n], dtype=object) for n in names]
            pyogrio.raw.write(temp, wkb, values, names, layer=layer, driver="GPKG",
                              geometry_type=kind, crs=crs or None,
                              # pyogrio's own GDAL writes GeoPackage 1.4, which GDAL 3.6 reads
                              # only with a warning; 1.2 reads cleanly everywhere.
                              dataset_options={"VERSION": "1.2"} if layer == layers[0][0] else None)
        os.replace(temp, path)
    except BaseException:
        _remove(temp)
        raise


def _remove(path: str) -> None:
    for p in (path, path + "-wal", path + "-shm", path + "-journal"):
        try:
            os.remove(p)
        except FileNotFoundError:
            pass
