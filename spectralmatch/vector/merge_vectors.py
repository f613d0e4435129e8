"""``merge_vectors``: combine the features of several vector files into one file.

Files are read and written with pyogrio (first layer of each input), geometries are combined
with shapely 2. Every layer is brought to the first layer's CRS before anything is combined;
the output is written under a temporary name beside the target and renamed when complete.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from osgeo import ogr, osr

from ..errors import ParameterError, PathError
from ..io.paths import _check_collisions, image_name, resolve_input_paths
from ..io.raster import same_crs
from ..progress import configure_logging

logger = logging.getLogger("spectralmatch")

osr.UseExceptions()
ogr.UseExceptions()

METHODS = ("keep", "union", "intersection")

#: Output drivers by file extension.
DRIVERS = {".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".geojson": "GeoJSON", ".json": "GeoJSON",
           ".fgb": "FlatGeobuf", ".gml": "GML", ".kml": "KML", ".sqlite": "SQLite"}
#: Drivers whose layer name is the file name (no layer option).
_FILE_NAMED_LAYERS = {"ESRI Shapefile"}


@dataclass
class _Column:
    """One attribute column: values plus a null mask (True = null)."""

    values: np.ndarray
    mask: np.ndarray


@dataclass
class _Layer:
    """Features of one input (or of an intermediate result): geometries and named columns."""

    geoms: np.ndarray  # shapely geometries (None for features without geometry)
    columns: dict[str, _Column]  # insertion order = field order

    def __len__(self) -> int:
        return len(self.geoms)

    def take(self, index: np.ndarray) -> dict[str, _Column]:
        return {name: _Column(col.values[index], col.mask[index])
                for name, col in self.columns.items()}


def merge_vectors(
    input_vectors: str | list[str],
    merged_vector_path: str,
    method: str,
    debug_logs: bool = False,
    create_name_attribute: tuple[str, str] | None = None,
) -> str:
    """Merge multiple vector files using the specified geometric method.

    The first layer of every input is read; layers in another CRS than the first input's are
    reprojected to it (a layer without a CRS is taken as being in it). Methods:

    - "keep": every feature of every input, in input order, with its attributes (the output
      has the union of all fields; a field missing from an input is null for its features).
    - "union": one feature whose geometry is the geometric union (dissolve) of all features
      of all inputs. Attributes are not carried over (they cannot be combined meaningfully);
      only the name attribute below is written.
    - "intersection": an overlay intersection, layer after layer. The result starts as the
      first layer's features; for each next layer, the new result is every non-empty
      intersection of a result feature with a feature of that layer (ordered by result
      feature, then layer feature), carrying the attributes of both — a field the result
      already has (compared case-insensitively) is dropped from the later layer. Parts of
      lower dimension than the inputs (e.g. the shared edge of two touching polygons) are
      dropped. Features covered by only some of the layers are therefore not in the result.

    Invalid geometries are repaired with shapely.make_valid before "union" and
    "intersection". Features without geometry are kept by "keep" and ignored otherwise.

    Args:
        input_vectors (str | List[str]): Defines input files from a glob path, folder, or list of paths. Specify like: "/input/files/*.gpkg", "/input/folder" (assumes *.gpkg), ["/input/one.gpkg", "/input/two.gpkg"].
        merged_vector_path (str): Path to save merged output; the format follows the extension (.gpkg, .shp, .geojson, .json, .fgb, .gml, .kml, .sqlite). The output may not be one of the inputs; an existing file is replaced only once the new one is complete.
        method (Literal["intersection", "union", "keep"]): Merge strategy (see above).
        debug_logs (bool): If True, print debug information.
        create_name_attribute (Optional[Tuple[str, str]]): Tuple of (field_name, separator) to add a name field: with "keep" each feature gets its source file's stem; with "union" and "intersection" every feature gets the stems of all inputs joined by the separator. An input field of the same name is replaced.

    Returns:
        str: The path of the merged file.

    Raises:
        SpectralMatchError: An unknown method, a bad create_name_attribute, no inputs, an
            unreadable input, an unsupported output extension, or an output that is one of
            the inputs — all detected before anything is written.
    """
    configure_logging(debug_logs)
    logger.info("Start merge_vectors")
    if not isinstance(method, str) or method not in METHODS:
        raise ParameterError(f"method={method!r} is not accepted; use one of "
                             f"{', '.join(repr(m) for m in METHODS)}")
    name_field, separator = _check_name_attribute(create_name_attribute)
    inputs = resolve_input_paths(input_vectors, default_file_pattern="*.gpkg",
                                 parameter="input_vectors")
    if not isinstance(merged_vector_path, (str, os.PathLike)):
        raise ParameterError(f"merged_vector_path must be a file path, got "
                             f"{merged_vector_path!r}")
    output = os.fspath(merged_vector_path)
    driver = _output_driver(output)
    _check_collisions([output], inputs, "merged_vector_path")

    layers, crs = _read_layers(inputs)
    stems = [image_name(p) for p in inputs]
    if method == "keep":
        result = _keep(layers)
        names = np.concatenate([np.full(len(layer), stem, dtype=object)
                                for layer, stem in zip(layers, stems, strict=True)])
    else:
        result = _union(layers) if method == "union" else _intersection(layers)
        # every feature of a union or an intersection comes from all inputs
        names = np.full(len(result), (separator or "").join(stems), dtype=object)
    if name_field is not None:
        result.columns = {k: v for k, v in result.columns.items()
                          if k.casefold() != name_field.casefold()}
        result.columns[name_field] = _Column(names, np.zeros(len(names), dtype=bool))

    _write(result, output, driver, crs)
    logger.info("Finished merge_vectors: %d feature(s) written to '%s' (method %s)",
                len(result), output, method)
    return output


def _check_name_attribute(value: object) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, str) for v in value) and value[0].strip()):
        return value[0], value[1]
    raise ParameterError(f"create_name_attribute={value!r} is not accepted; use None or a tuple "
                         "(field_name, separator) of two strings, e.g. (\"image\", \"_\")")


def _output_driver(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    driver = DRIVERS.get(ext)
    if driver is None:
        raise ParameterError(f"merged_vector_path '{path}': the extension {ext or '(none)'!r} is "
                             f"not supported; use one of {', '.join(sorted(DRIVERS))}")
    if ogr.GetDriverByName(driver) is None:  # pragma: no cover - depends on the GDAL build
        raise ParameterError(f"merged_vector_path '{path}': GDAL has no {driver} driver")
    return driver


# ----------------------------------------------------------------------------- reading

def _read_layers(paths: Sequence[str]) -> tuple[list[_Layer], str | None]:
    """Every input's first layer, reprojected to the first input's CRS (returned too)."""
    import pyogrio
    import pyogrio.raw

    layers: list[_Layer] = []
    target: str | None = None
    for i, path in enumerate(paths):
        try:
            names = pyogrio.list_layers(path)
            meta, _, wkb, field_data = pyogrio.raw.read(path, layer=0)
        except Exception as exc:  # pyogrio raises DataSourceError and friends
            raise PathError(f"input_vectors: cannot read '{path}' as a vector file: "
                            f"{exc}") from exc
        if len(names) > 1:
            logger.warning("merge_vectors: '%s' has %d layers; only the first, '%s', is used",
                           path, len(names), names[0][0])
        geoms = shapely.from_wkb(np.asarray(wkb, dtype=object))
        crs = meta.get("crs")
        if i == 0:
            target = crs
        elif crs is None or target is None:
            if crs != target:
                logger.warning("merge_vectors: '%s' has %s; its coordinates are used as they "
                               "are", path, "no CRS" if crs is None else
                               f"CRS {crs} but the first input has none")
        elif not same_crs(_srs(crs).ExportToWkt(), _srs(target).ExportToWkt()):
            logger.info("merge_vectors: reprojecting '%s' from %s to %s", path, _crs_label(crs),
                        _crs_label(target))
            geoms = _reproject(geoms, crs, target, path)
        columns = {}
        for name, ogr_type, values in zip(meta["fields"], meta["ogr_types"], field_data,
                                          strict=True):
            columns[str(name)] = _column(values, ogr_type)
        logger.debug("merge_vectors: '%s': %d feature(s), fields %s", path, len(geoms),
                     list(columns))
        layers.append(_Layer(geoms, columns))
    return layers, target


def _column(values: np.ndarray, ogr_type: str) -> _Column:
    """A column with an explicit null mask (pyogrio reads null integers as NaN floats)."""
    values = np.asarray(values)
    if values.dtype.kind == "f" and ogr_type in ("OFTInteger", "OFTInteger64"):
        mask = np.isnan(values)
        dtype = np.int32 if ogr_type == "OFTInteger" else np.int64
        return _Column(np.where(mask, 0, values).astype(dtype), mask)
    if values.dtype.kind == "f":
        return _Column(values, np.isnan(values))
    if values.dtype.kind in "mM":
        return _Column(values, np.isnat(values))
    if values.dtype.kind == "O":
        return _Column(values, np.array([v is None for v in values], dtype=bool))
    return _Column(values, np.zeros(len(values), dtype=bool))


def _srs(text: str) -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.SetFromUserInput(text)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)  # x = easting/longitude
    return srs


def _crs_label(crs: str) -> str:
    return crs if len(crs) < 40 else (_srs(crs).GetName() or "its CRS")


def _reproject(geoms: np.ndarray, src: str, dst: str, path: str) -> np.ndarray:
    transform = osr.CoordinateTransformation(_srs(src), _srs(dst))

    def points(xy: np.ndarray) -> np.ndarray:
        if len(xy) == 0:
            return xy
        out = np.asarray(transform.TransformPoints(np.ascontiguousarray(xy, dtype=np.float64)),
                         dtype=np.float64)[:, :xy.shape[1]]
        if not np.isfinite(out).all():
            raise ParameterError(f"input_vectors: geometries of '{path}' cannot be transformed "
                                 "to the first input's CRS (coordinates outside its area of use)")
        return out

    try:
        return shapely.transform(geoms, points, include_z=None)
    except RuntimeError as exc:  # osr raises RuntimeError on failed transforms
        raise ParameterError(f"input_vectors: geometries of '{path}' cannot be transformed to "
                             f"the first input's CRS: {exc}") from exc


# ----------------------------------------------------------------------------- methods

def _merge_columns(parts: Sequence[tuple[dict[str, _Column], int]]) -> dict[str, _Column]:
    """Stack the columns of consecutive feature blocks; fields missing from a block are null.

    Field names are matched case-insensitively (GeoPackage and shapefile fields are); the
    first spelling wins. Columns whose dtypes differ are promoted (numbers to a common numeric
    type, anything else to text).
    """
    spelling: dict[str, str] = {}
    for columns, _ in parts:
        for name in columns:
            spelling.setdefault(name.casefold(), name)
    merged: dict[str, _Column] = {}
    for key, name in spelling.items():
        blocks = []
        for columns, count in parts:
            found = next((c for n, c in columns.items() if n.casefold() == key), None)
            blocks.append((found, count))
        merged[name] = _stack(blocks)
    return merged


def _stack(blocks: Sequence[tuple[_Column | None, int]]) -> _Column:
    present = [c for c, _ in blocks if c is not None]
    dtypes = {c.values.dtype for c in present}
    kinds = {dt.kind for dt in dtypes}
    if len(dtypes) == 1:
        dtype = next(iter(dtypes))
    elif kinds <= set("biuf") or kinds <= set("mM"):
        dtype = np.result_type(*dtypes)
    else:
        dtype = np.dtype(object)
    values, masks = [], []
    for column, count in blocks:
        if column is None:
            values.append(np.zeros(count, dtype=dtype) if dtype.kind != "O"
                          else np.full(count, None, dtype=object))
            masks.append(np.ones(count, dtype=bool))
            continue
        v = column.values
        if v.dtype != dtype:
            if dtype.kind == "O":  # mixed types: text, nulls stay null
                v = np.array([None if m else (x if isinstance(x, str) else str(x))
                              for x, m in zip(v, column.mask, strict=True)], dtype=object)
            else:
                v = v.astype(dtype)
        values.append(v)
        masks.append(column.mask)
    return _Column(np.concatenate(values) if values else np.empty(0, dtype=dtype),
                   np.concatenate(masks) if masks else np.empty(0, dtype=bool))


def _keep(layers: Sequence[_Layer]) -> _Layer:
    geoms = np.concatenate([layer.geoms for layer in layers])
    return _Layer(geoms, _merge_columns([(layer.columns, len(layer)) for layer in layers]))


def _usable(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices, geometries) of the non-missing, non-empty features, repaired when invalid."""
    index = np.flatnonzero(~shapely.is_missing(geoms))
    index = index[~shapely.is_empty(geoms[index])]
    usable = geoms[index].copy()
    invalid = ~shapely.is_valid(usable)
    if invalid.any():
        logger.debug("merge_vectors: repairing %d invalid geometr%s", invalid.sum(),
                     "y" if invalid.sum() == 1 else "ies")
        usable[invalid] = shapely.make_valid(usable[invalid])
    return index, usable


def _union(layers: Sequence[_Layer]) -> _Layer:
    geoms = np.concatenate([_usable(layer.geoms)[1] for layer in layers])
    if len(geoms) == 0:
        logger.warning("merge_vectors: the inputs have no geometry; the union is empty")
        return _Layer(np.empty(0, dtype=object), {})
    return _Layer(np.array([shapely.union_all(geoms)], dtype=object), {})


def _intersection(layers: Sequence[_Layer]) -> _Layer:
    index, geoms = _usable(layers[0].geoms)
    result = _Layer(geoms, layers[0].take(index))
    for layer in layers[1:]:
        index, other = _usable(layer.geoms)
        left, right = shapely.STRtree(other).query(result.geoms, predicate="intersects")
        order = np.lexsort((right, left))  # by result feature, then layer feature
        left, right = left[order], right[order]
        dims = np.minimum(shapely.get_dimensions(result.geoms[left]),
                          shapely.get_dimensions(other[right]))
        parts = shapely.intersection(result.geoms[left], other[right])
        parts = np.array([_parts_of_dimension(g, d) for g, d in
                          zip(parts, dims, strict=True)], dtype=object)
        kept = ~shapely.is_empty(parts)
        left, right, parts = left[kept], right[kept], parts[kept]
        columns = result.take(left)
        taken = {name.casefold() for name in columns}
        for name, column in layer.take(index[right]).items():
            if name.casefold() not in taken:  # later duplicates are dropped
                columns[name] = column
        result = _Layer(parts, columns)
    if len(result) == 0:
        logger.warning("merge_vectors: the layers have no common area; the intersection is "
                       "empty")
    return result


def _parts_of_dimension(geom: shapely.Geometry, dimension: int) -> shapely.Geometry:
    """``geom`` without its parts of lower dimension than ``dimension`` (empty if none)."""
    if shapely.get_type_id(geom) != 7 and shapely.get_dimensions(geom) == dimension:
        return geom
    parts = shapely.get_parts(geom)
    parts = parts[shapely.get_dimensions(parts) >= dimension]
    if len(parts) == 0:
        return shapely.from_wkt("GEOMETRYCOLLECTION EMPTY")
    if len(parts) == 1:
        return parts[0]
    if dimension == 2:
        return shapely.union_all(parts)
    return shapely.geometrycollections(parts)


# ----------------------------------------------------------------------------- writing

_SINGLE_TO_MULTI = {"Point": "MultiPoint", "LineString": "MultiLineString",
                    "Polygon": "MultiPolygon"}


def _geometry_type(geoms: np.ndarray) -> str:
    """The layer geometry type: the one type of all features, Multi* for single + multi."""
    names = {shapely.get_type_id(g) for g in geoms if g is not None}
    labels = {("Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString",
               "MultiPolygon", "GeometryCollection")[t] for t in names}
    labels = {"LineString" if t == "LinearRing" else t for t in labels}
    if len(labels) == 1:
        return labels.pop()
    if len(labels) == 2:
        for single, multi in _SINGLE_TO_MULTI.items():
            if labels == {single, multi}:
                return multi
    return "Unknown"


def _write(layer: _Layer, path: str, driver: str, crs: str | None) -> None:
    """Write the features under a temporary name in the target folder, then rename."""
    import pyogrio.raw

    folder, base = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(base)
    os.makedirs(folder, exist_ok=True)
    temp_stem = f".{stem}.partial"
    temp = os.path.join(folder, temp_stem + ext)
    _remove_set(folder, temp_stem)
    geometry_type = _geometry_type(layer.geoms)
    geoms = layer.geoms
    if geometry_type in _SINGLE_TO_MULTI.values():  # one layer type for single + multi parts
        geoms = np.array([_as_multi(g, geometry_type) for g in geoms], dtype=object)
    wkb = np.array([None if g is None else shapely.to_wkb(g) for g in geoms], dtype=object)
    fields = list(layer.columns)
    options: dict = {} if driver in _FILE_NAMED_LAYERS else {"layer": stem}
    if driver == "GPKG":
        # pyogrio's bundled GDAL writes GeoPackage 1.4 by default, which the system GDAL 3.6
        # (osgeo) reads with a warning; 1.2 reads cleanly everywhere.
        options["dataset_options"] = {"VERSION": "1.2"}
    try:
        pyogrio.raw.write(temp, wkb, [c.values for c in layer.columns.values()], fields,
                          field_mask=[c.mask if c.mask.any() else None
                                      for c in layer.columns.values()],
                          driver=driver, geometry_type=geometry_type, crs=crs,
                          promote_to_multi=False, **options)
        # Multi-file formats (shapefiles) are renamed file by file, the main file last.
        companions = [n for n in os.listdir(folder)
                      if n.startswith(temp_stem + ".") and n != temp_stem + ext]
        for name in companions:
            os.replace(os.path.join(folder, name),
                       os.path.join(folder, stem + name[len(temp_stem):]))
        os.replace(temp, path)
    except BaseException:
        _remove_set(folder, temp_stem)
        raise


def _as_multi(geom: shapely.Geometry | None, multi: str) -> shapely.Geometry | None:
    if geom is None or shapely.get_type_id(geom) in (4, 5, 6):
        return geom
    build = {"MultiPoint": shapely.multipoints, "MultiLineString": shapely.multilinestrings,
             "MultiPolygon": shapely.multipolygons}[multi]
    return build([geom])


def _remove_set(folder: str, temp_stem: str) -> None:
    for name in os.listdir(folder):
        if name.startswith(temp_stem + "."):
            try:
                os.remove(os.path.join(folder, name))
            except OSError:  # pragma: no cover - reported by the caller's error
                pass
