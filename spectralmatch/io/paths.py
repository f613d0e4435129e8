"""Input/output path resolution: glob searches, ``$`` output templates and name matching.

The public helpers (:func:`search_paths`, :func:`create_paths`, :func:`match_paths`) keep the
seed API. Processing functions go through :func:`resolve_input_paths` and
:func:`resolve_output_paths`, which add the safety checks the seed lacked: nothing found is an
error, outputs may not overwrite inputs or each other, and folders are only created once every
check has passed.
"""
from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Sequence

from spectralmatch.errors import ParameterError, PathError

logger = logging.getLogger("spectralmatch.io")

PathLike = str | os.PathLike


def image_name(path: PathLike) -> str:
    """Return the image "name": the file stem (last path component without its last extension).

    Both ``/`` and ``\\`` count as separators so that names are the same on every platform.

    Args:
        path: A file path or a bare file name.

    Returns:
        The stem, e.g. ``"/data/a.b.tif"`` -> ``"a.b"``.
    """
    last = re.split(r"[\\/]", os.fspath(path))[-1]
    return os.path.splitext(last)[0]


def _is_folder_pattern(pattern: str) -> bool:
    # Seed rule: a basename without "." is a folder (a trailing separator gives an empty basename).
    return "." not in os.path.basename(pattern)


def search_paths(
    search_pattern: PathLike,
    *,
    default_file_pattern: str | None = None,
    recursive: bool = False,
    match_to_paths: tuple[Sequence[PathLike], str] | None = None,
    debug_logs: bool = False,
) -> list[str] | list[str | None]:
    """Search for files with a glob pattern, or in a folder with a default file pattern.

    Args:
        search_pattern: A glob such as ``"/in/*.tif"`` or a folder such as ``"/in"`` (a basename
            without ``.`` is a folder and gets ``default_file_pattern`` appended).
        default_file_pattern: Pattern used when ``search_pattern`` is a folder, e.g. ``"*.tif"``.
        recursive: Let ``**`` match any number of folders; for a folder pattern the default
            pattern is searched in the folder and all its sub-folders.
        match_to_paths: ``(reference_paths, regex)``: return ``match_paths(found, *this)``.
        debug_logs: Log the paths found.

    Returns:
        Sorted matching paths (empty with a warning when nothing matches), or the list aligned
        with the reference paths when ``match_to_paths`` is given.

    Raises:
        PathError: ``search_pattern`` is a folder and ``default_file_pattern`` is not set.
    """
    pattern = os.fspath(search_pattern)
    if _is_folder_pattern(pattern):
        if not default_file_pattern:
            raise PathError(
                f"search pattern {pattern!r} is a folder (its name has no '.'); pass "
                "default_file_pattern (e.g. '*.tif') or a file glob like '/folder/*.tif'"
            )
        parts = ("**", default_file_pattern) if recursive else (default_file_pattern,)
        pattern = os.path.join(pattern, *parts)
    found = sorted(glob.glob(pattern, recursive=recursive))
    if not found:
        logger.warning("No files found for search pattern %r", pattern)
    elif debug_logs:
        logger.info("Found %d file(s) for %r: %s", len(found), pattern, found)
    if match_to_paths is not None:
        reference_paths, match_regex = match_to_paths
        return match_paths(found, reference_paths, match_regex, debug_logs)
    return found


def create_paths(
    template_pattern: PathLike,
    paths_or_bases: Sequence[PathLike],
    *,
    default_file_pattern: str | None = None,
    debug_logs: bool = False,
    replace_symbol: str = "$",
    create_folders: bool = True,
) -> list[str]:
    """Build one path per reference path or base name by filling a template.

    Args:
        template_pattern: A file template such as ``"/out/$_Global.tif"`` or a folder (basename
            without ``.``) that gets ``default_file_pattern`` appended.
        paths_or_bases: Paths (reduced to their stem) or base names (extension cut).
        default_file_pattern: Template used when ``template_pattern`` is a folder.
        debug_logs: Log the created paths.
        replace_symbol: Placeholder replaced by each stem (every occurrence).
        create_folders: Create the output folders.

    Returns:
        One path per element of ``paths_or_bases``, in order.

    Raises:
        PathError: ``template_pattern`` is a folder and ``default_file_pattern`` is not set.
    """
    template = _effective_template(os.fspath(template_pattern), default_file_pattern)
    # For bases without a separator image_name only cuts the extension, as the seed does.
    paths = [template.replace(replace_symbol, image_name(base)) for base in paths_or_bases]
    if create_folders:
        _make_folders(paths)
    if debug_logs:
        logger.info("Created paths from %r: %s", template, paths)
    return paths


def _effective_template(template: str, default_file_pattern: str | None) -> str:
    if not _is_folder_pattern(template):
        return template
    if not default_file_pattern:
        raise PathError(
            f"output template {template!r} is a folder (its name has no '.'); pass "
            "default_file_pattern (e.g. '$_Global.tif') or a file template like '/out/$.tif'"
        )
    return os.path.join(template, default_file_pattern)


def _make_folders(paths: Sequence[str]) -> None:
    for folder in {os.path.dirname(p) for p in paths}:
        if folder:
            os.makedirs(folder, exist_ok=True)


def match_paths(
    input_match_paths: Sequence[PathLike],
    reference_paths: Sequence[PathLike],
    match_regex: str,
    debug_logs: bool = False,
) -> list[str | None]:
    """Align candidate paths to reference paths through a key extracted by a regex.

    The regex is searched in each candidate's basename; the key is group 1 if the regex has
    groups, else the whole match. For each reference, the first candidate (in the given order)
    whose key is a substring of the reference basename wins. Empty keys never match.

    Args:
        input_match_paths: Candidate paths to extract keys from.
        reference_paths: Paths to align to.
        match_regex: Regex, e.g. ``r"(.*)_LocalMatch\\.gpkg$"``.
        debug_logs: Log matched and unmatched references.

    Returns:
        A list aligned with ``reference_paths``: the matched candidate or ``None``.

    Raises:
        ParameterError: ``match_regex`` is not a valid regular expression.
    """
    try:
        regex = re.compile(match_regex)
    except re.error as exc:
        raise ParameterError(f"match_regex {match_regex!r} is not a valid regex: {exc}") from None
    keyed: list[tuple[str, str]] = []
    for candidate in map(os.fspath, input_match_paths):
        m = regex.search(os.path.basename(candidate))
        if m is None:
            continue
        key = m.group(1) if regex.groups and m.group(1) is not None else m.group(0)
        if key:
            keyed.append((key, candidate))
    matched: list[str | None] = []
    for reference in map(os.fspath, reference_paths):
        ref_base = os.path.basename(reference)
        matched.append(next((c for key, c in keyed if key in ref_base), None))
        if debug_logs:
            logger.info("match_paths: %s -> %s", ref_base, matched[-1])
    return matched


def resolve_input_paths(
    input_images: PathLike | Sequence[PathLike],
    *,
    default_file_pattern: str = "*.tif",
    parameter: str = "input_images",
) -> list[str]:
    """Resolve a processing function's inputs to a non-empty list of existing files.

    Args:
        input_images: A list/tuple of file paths (used as is), or a glob / folder / file path.
        default_file_pattern: Pattern appended to a folder (``"*.gpkg"`` for vectors).
        parameter: Parameter name used in error messages.

    Returns:
        The input paths as strings (sorted when found by glob).

    Raises:
        PathError: Nothing matches, or a listed path is not an existing file.
        ParameterError: ``input_images`` has an unsupported type.
    """
    if isinstance(input_images, (str, os.PathLike)):
        pattern = os.fspath(input_images)
        if os.path.isfile(pattern):  # literal file name, even with glob characters like "["
            return [pattern]
        found = search_paths(pattern, default_file_pattern=default_file_pattern)
        if not found:
            raise PathError(
                f"{parameter}: no files found for {pattern!r} (a folder is searched for "
                f"{default_file_pattern!r}; a glob like '/folder/*.tif' or a list is accepted)"
            )
        return found
    if not isinstance(input_images, (list, tuple)):
        raise ParameterError(
            f"{parameter} must be a list of paths or a glob/folder string, "
            f"got {type(input_images).__name__}"
        )
    paths = [os.fspath(p) for p in input_images]
    if not paths:
        raise PathError(f"{parameter} is an empty list; give at least one file")
    for path in paths:
        if not os.path.isfile(path):
            raise PathError(f"{parameter}: {path!r} is not an existing file")
    return paths


def resolve_output_paths(
    output_images: PathLike | Sequence[PathLike],
    input_paths: Sequence[PathLike],
    *,
    default_file_pattern: str,
    parameter: str = "output_images",
    create_folders: bool = True,
) -> list[str]:
    """Resolve and check one output path per input; create folders only if all checks pass.

    Args:
        output_images: A list/tuple (one path per input) or a ``$`` template / folder.
        input_paths: The resolved input paths.
        default_file_pattern: Function's default template used for a folder, e.g.
            ``"$_Global.tif"``.
        parameter: Parameter name used in error messages.
        create_folders: Create the output folders after validation.

    Returns:
        Output paths aligned with ``input_paths``.

    Raises:
        PathError: Length mismatch, a template without ``$`` for several inputs, an output equal
            to an input, or two equal outputs.
        ParameterError: ``output_images`` has an unsupported type.
    """
    inputs = [os.fspath(p) for p in input_paths]
    if isinstance(output_images, (str, os.PathLike)):
        template = _effective_template(os.fspath(output_images), default_file_pattern)
        if "$" not in template and len(inputs) > 1:
            raise PathError(
                f"{parameter}: template {template!r} has no '$' but there are {len(inputs)} "
                "inputs, so every output would be the same file; put '$' where the input name goes"
            )
        outputs = create_paths(template, inputs, create_folders=False)
    elif isinstance(output_images, (list, tuple)):
        outputs = [os.fspath(p) for p in output_images]
        if len(outputs) != len(inputs):
            raise PathError(
                f"{parameter} has {len(outputs)} path(s) but there are {len(inputs)} inputs; "
                "give one output per input or a '$' template"
            )
    else:
        raise ParameterError(
            f"{parameter} must be a list of paths or a '$' template/folder string, "
            f"got {type(output_images).__name__}"
        )
    _check_collisions(outputs, inputs, parameter)
    if create_folders:
        _make_folders(outputs)
    return outputs


def _file_keys(path: str) -> list[tuple]:
    # The real path catches links and "a/../b"; the inode catches hard links and
    # case-insensitive file systems when the file already exists.
    keys: list[tuple] = [("path", os.path.normcase(os.path.realpath(path)))]
    try:
        st = os.stat(path)
        keys.append(("inode", st.st_dev, st.st_ino))
    except OSError:
        pass
    return keys


def _check_collisions(outputs: list[str], inputs: list[str], parameter: str) -> None:
    # Dictionaries keep this linear: runs with thousands of images are common.
    input_of = {key: inp for inp in inputs for key in _file_keys(inp)}
    output_of: dict[tuple, str] = {}
    for out in outputs:
        keys = _file_keys(out)
        for key in keys:
            if key in input_of:
                raise PathError(
                    f"{parameter}: output {out!r} is the same file as input {input_of[key]!r}; "
                    "choose another output folder or template"
                )
            if key in output_of:
                raise PathError(
                    f"{parameter}: outputs {output_of[key]!r} and {out!r} are the same file; "
                    "each input needs its own output"
                )
        output_of.update(dict.fromkeys(keys, out))
