"""Tests for spectralmatch.io.paths: searching, templates, matching and output safety checks."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from spectralmatch.errors import ParameterError, PathError, SpectralMatchError
from spectralmatch.io.paths import (
    create_paths,
    image_name,
    match_paths,
    resolve_input_paths,
    resolve_output_paths,
    search_paths,
)


def _touch(folder: Path, *names: str) -> list[str]:
    out = []
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        out.append(str(path))
    return out


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    _touch(folder, "c.tif", "a.tif", "b.tif", "notes.txt", "sub/d.tif")
    return folder


# --- search_paths -----------------------------------------------------------------------------

def test_search_folder_uses_default_pattern_and_sorts(images: Path) -> None:
    found = search_paths(str(images), default_file_pattern="*.tif")
    assert found == [str(images / n) for n in ("a.tif", "b.tif", "c.tif")]


def test_search_glob_and_trailing_separator(images: Path) -> None:
    assert search_paths(str(images / "*.txt")) == [str(images / "notes.txt")]
    # A trailing separator has an empty basename: still a folder.
    found = search_paths(str(images) + os.sep, default_file_pattern="b*.tif")
    assert [os.path.basename(p) for p in found] == ["b.tif"]


def test_search_folder_without_default_pattern_is_an_error(images: Path) -> None:
    with pytest.raises(ValueError, match="default_file_pattern"):
        search_paths(str(images))


def test_search_recursive(images: Path) -> None:
    names = [os.path.relpath(p, images) for p in search_paths(
        str(images), default_file_pattern="*.tif", recursive=True)]
    assert names == ["a.tif", "b.tif", "c.tif", os.path.join("sub", "d.tif")]
    glob_names = search_paths(str(images / "**" / "*.tif"), recursive=True)
    assert len(glob_names) == 4
    assert len(search_paths(str(images / "**" / "*.tif"))) == 1  # "**" acts as "*" otherwise


def test_search_nothing_found_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="spectralmatch"):
        assert search_paths(str(tmp_path / "*.tif")) == []
    assert any(r.name.startswith("spectralmatch") and "*.tif" in r.getMessage()
               for r in caplog.records)


def test_search_pathlib_and_match_to_paths(images: Path, tmp_path: Path) -> None:
    masks = _touch(tmp_path / "masks", "b_mask.gpkg", "a_mask.gpkg")
    refs = [str(images / "a.tif"), str(images / "z.tif"), str(images / "b.tif")]
    got = search_paths(tmp_path / "masks", default_file_pattern="*.gpkg",
                       match_to_paths=(refs, r"(.*)_mask\.gpkg$"))
    assert got == [masks[1], None, masks[0]]


# --- create_paths ------------------------------------------------------------------------------

def test_create_paths_bases_with_and_without_slashes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    got = create_paths(str(out / "$_Global.tif"),
                       ["/x/y/img1.tif", "C:\\data\\img2.tif", "img3.tif", "img4", "a.b.tif"])
    names = [os.path.basename(p) for p in got]
    assert names == ["img1_Global.tif", "img2_Global.tif", "img3_Global.tif",
                     "img4_Global.tif", "a.b_Global.tif"]
    assert out.is_dir()


def test_create_paths_several_symbols_folder_and_no_folders(tmp_path: Path) -> None:
    got = create_paths(str(tmp_path / "o" / "$" / "$_x.tif"), [Path("/d/img.tif")],
                       create_folders=False)
    assert got == [str(tmp_path / "o" / "img" / "img_x.tif")]
    assert not (tmp_path / "o").exists()
    got = create_paths(str(tmp_path / "f"), ["a.tif"], default_file_pattern="$_Local.tif")
    assert got == [str(tmp_path / "f" / "a_Local.tif")] and (tmp_path / "f").is_dir()
    assert create_paths("o/#.tif", ["k.tif"], replace_symbol="#", create_folders=False) == [
        os.path.join("o", "k.tif")]
    with pytest.raises(ValueError):
        create_paths(str(tmp_path / "g"), ["a.tif"])


def test_image_name() -> None:
    assert image_name("/a/b/scene.01.tif") == "scene.01"
    assert image_name(Path("x") / "y.tif") == "y"
    assert image_name("noext") == "noext"


# --- match_paths -------------------------------------------------------------------------------

def test_match_paths_group_whole_match_and_none() -> None:
    cands = ["/m/img1_Local.gpkg", "/m/img2_Local.gpkg", "/m/other.txt"]
    refs = ["/r/img2.tif", "/r/img3.tif", "/r/img1.tif"]
    assert match_paths(cands, refs, r"(.*)_Local\.gpkg$") == [cands[1], None, cands[0]]
    # No group: the whole match ("img1") is the key.
    assert match_paths(cands, refs, r"img\d") == [cands[1], None, cands[0]]


def test_match_paths_first_key_wins_by_substring() -> None:
    # "img1" is a substring of "img12.tif", so the first candidate wins for both references.
    cands = ["/m/img1_v.gpkg", "/m/img12_v.gpkg"]
    assert match_paths(cands, ["img12.tif", "img1.tif"], r"(.*)_v") == [cands[0], cands[0]]
    assert match_paths(cands[::-1], ["img12.tif", "img1.tif"], r"(.*)_v") == [cands[1], cands[0]]


def test_match_paths_bad_regex() -> None:
    with pytest.raises(ParameterError, match="match_regex"):
        match_paths(["a"], ["a"], "(")


# --- resolve_input_paths -----------------------------------------------------------------------

def test_resolve_inputs_folder_glob_list_and_pathlib(images: Path) -> None:
    expected = [str(images / n) for n in ("a.tif", "b.tif", "c.tif")]
    assert resolve_input_paths(str(images)) == expected
    assert resolve_input_paths(images) == expected
    assert resolve_input_paths(str(images / "[ab].tif")) == expected[:2]
    lst = [images / "c.tif", str(images / "a.tif")]
    assert resolve_input_paths(lst) == [expected[2], expected[0]]  # list order kept
    assert resolve_input_paths(str(images), default_file_pattern="*.txt") == [
        str(images / "notes.txt")]


def test_resolve_inputs_literal_file_with_glob_characters(tmp_path: Path) -> None:
    (path,) = _touch(tmp_path, "img[1].tif")
    assert resolve_input_paths(path) == [path]


def test_resolve_inputs_errors(images: Path, tmp_path: Path) -> None:
    pattern = str(tmp_path / "nothing" / "*.tif")
    with pytest.raises(PathError, match="nothing"):
        resolve_input_paths(pattern)
    with pytest.raises(PathError, match="missing.tif"):
        resolve_input_paths([str(images / "a.tif"), str(images / "missing.tif")])
    with pytest.raises(PathError, match="input_images"):
        resolve_input_paths([])
    with pytest.raises(ParameterError, match="input_vectors"):
        resolve_input_paths(42, parameter="input_vectors")  # type: ignore[arg-type]
    assert issubclass(PathError, SpectralMatchError) and issubclass(PathError, ValueError)


# --- resolve_output_paths ----------------------------------------------------------------------

def test_resolve_outputs_folder_template_and_list(images: Path, tmp_path: Path) -> None:
    inputs = resolve_input_paths(str(images))
    out = tmp_path / "out" / "deep"
    got = resolve_output_paths(str(out), inputs, default_file_pattern="$_Global.tif")
    assert got == [str(out / f"{n}_Global.tif") for n in "abc"]
    assert out.is_dir()
    got = resolve_output_paths(tmp_path / "t" / "$_x.tif", inputs, default_file_pattern="$.tif")
    assert [os.path.basename(p) for p in got] == ["a_x.tif", "b_x.tif", "c_x.tif"]
    lst = [tmp_path / "l" / "1.tif", str(tmp_path / "l" / "2.tif"), str(tmp_path / "3.tif")]
    got = resolve_output_paths(lst, inputs, default_file_pattern="$.tif")
    assert got == [str(p) for p in lst] and (tmp_path / "l").is_dir()


def test_resolve_outputs_template_without_symbol(images: Path, tmp_path: Path) -> None:
    one = [str(images / "a.tif")]
    assert resolve_output_paths(str(tmp_path / "m.tif"), one, default_file_pattern="$.tif") == [
        str(tmp_path / "m.tif")]
    with pytest.raises(PathError, match=r"no '\$'"):
        resolve_output_paths(str(tmp_path / "x" / "m.tif"), resolve_input_paths(str(images)),
                             default_file_pattern="$.tif")
    assert not (tmp_path / "x").exists()


def test_resolve_outputs_length_mismatch(images: Path, tmp_path: Path) -> None:
    with pytest.raises(PathError, match="2 path"):
        resolve_output_paths([str(tmp_path / "n" / "1.tif"), str(tmp_path / "n" / "2.tif")],
                             resolve_input_paths(str(images)), default_file_pattern="$.tif")
    assert not (tmp_path / "n").exists()


def test_resolve_outputs_overwriting_an_input(images: Path, tmp_path: Path) -> None:
    inputs = resolve_input_paths(str(images))
    # Folder of the inputs with template "$.tif" would overwrite every input.
    with pytest.raises(PathError, match="a.tif"):
        resolve_output_paths(str(images), inputs, default_file_pattern="$.tif")
    # Via "..": a different string for the same file.
    sneaky = [str(tmp_path / "o1.tif"), str(images / "sub" / ".." / "b.tif"),
              str(tmp_path / "o3.tif")]
    with pytest.raises(PathError, match="same file as input"):
        resolve_output_paths(sneaky, inputs, default_file_pattern="$.tif")


def test_resolve_outputs_hard_link_to_input(images: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.tif"
    os.link(images / "a.tif", link)
    with pytest.raises(PathError, match="link.tif"):
        resolve_output_paths([str(link)], [str(images / "a.tif")], default_file_pattern="$.tif")


def test_resolve_outputs_duplicates_name_both(images: Path, tmp_path: Path) -> None:
    (other,) = _touch(tmp_path / "other", "a.tif")
    inputs = [str(images / "a.tif"), other]  # same stem in two folders
    with pytest.raises(PathError, match="outputs .*a_Global.tif.* and .*a_Global.tif"):
        resolve_output_paths(str(tmp_path / "dup"), inputs, default_file_pattern="$_Global.tif")
    assert not (tmp_path / "dup").exists()  # validation happens before any folder is created
    with pytest.raises(PathError, match="same file"):
        resolve_output_paths([str(tmp_path / "q.tif"), str(tmp_path / "." / "q.tif")], inputs,
                             default_file_pattern="$.tif")


def test_resolve_outputs_no_folder_creation_when_disabled(images: Path, tmp_path: Path) -> None:
    inputs = resolve_input_paths(str(images))
    got = resolve_output_paths(str(tmp_path / "nf"), inputs, default_file_pattern="$.tif",
                               create_folders=False)
    assert len(got) == 3 and not (tmp_path / "nf").exists()
    with pytest.raises(ParameterError, match="output_images"):
        resolve_output_paths(3, inputs, default_file_pattern="$.tif")  # type: ignore[arg-type]
