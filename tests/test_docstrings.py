"""Tests for the Google-style docstring parser behind the CLI help."""

from __future__ import annotations

from spectralmatch._docstrings import parse_docstring, parse_google_docstring


def _indented(a, b=1, *, window_size=None, flag=False):
    """Adjusts images so they match.

    A longer description
    that spans two lines.

    Second paragraph.

    Args:
        a (str | List[str], required): Input files from a glob,
            a folder or a list.
        b: Plain form without a type.
        window_size (int | Tuple[int, int] | Literal["internal"] | None, optional):
            Tiling strategy:
            - int: square tile size,
            - None: whole image.
        flag (bool): Turn it on.
            Defaults to False.

    Returns:
        List[str]: Paths to the outputs,
            one per input.

    Raises:
        ValueError: If something is wrong.

    Examples:
        >>> adjust("a.tif",
        ...        "b.tif")

    Notes:
        Uses float64 sums.
    """


FLATTENED = """Performs global radiometric normalization.
Args:
input_images (str | List[str], required): Defines input files.
vector_mask (Tuple[Literal["include", "exclude"], str, Optional[str]] | None): Mask to limit stats.
window_size (int | Tuple[int, int] | Literal["internal"] | None):
Tiling strategy:
- int: square tile size,
- None: single full-image window.
Returns:
List[str]: Paths to the adjusted images."""


def test_indented_docstring_summary_description_params_returns():
    summary, description, params, returns = parse_google_docstring(_indented.__doc__)
    assert summary == "Adjusts images so they match."
    assert description == "A longer description that spans two lines.\n\nSecond paragraph."
    assert list(params) == ["a", "b", "window_size", "flag"]
    assert params["a"] == "Input files from a glob, a folder or a list."
    assert params["b"] == "Plain form without a type."
    # Bullets keep their own lines; the line ending in ":" is not joined with them.
    assert (
        params["window_size"] == "Tiling strategy:\n- int: square tile size,\n- None: whole image."
    )
    assert params["flag"] == "Turn it on. Defaults to False."
    assert returns == "List[str]: Paths to the outputs, one per input."


def test_types_optional_marker_and_other_sections():
    parsed = parse_docstring(_indented.__doc__)
    assert parsed.param_types == {
        "a": "str | List[str]",
        "window_size": 'int | Tuple[int, int] | Literal["internal"] | None',
        "flag": "bool",
    }
    assert parsed.sections["Raises"] == "ValueError: If something is wrong."
    assert parsed.sections["Notes"] == "Uses float64 sums."
    # Examples are code: kept verbatim (relative indentation preserved).
    assert parsed.sections["Examples"] == '>>> adjust("a.tif",\n...        "b.tif")'
    # Raises/Examples/Notes never leak into parameters.
    assert "ValueError" not in parsed.params


def test_flattened_docstring_like_the_seed_api():
    summary, description, params, returns = parse_google_docstring(FLATTENED)
    assert summary == "Performs global radiometric normalization."
    assert description == ""
    assert list(params) == ["input_images", "vector_mask", "window_size"]
    assert params["input_images"] == "Defines input files."
    assert params["window_size"] == (
        "Tiling strategy:\n- int: square tile size,\n- None: single full-image window."
    )
    assert parse_docstring(FLATTENED).param_types["vector_mask"] == (
        'Tuple[Literal["include", "exclude"], str, Optional[str]] | None'
    )
    assert returns == "List[str]: Paths to the adjusted images."


def test_arguments_alias_yields_and_inline_returns():
    doc = """Iterates.

    Arguments:
        n (int): How many.
        *args: Extra values.
        **kwargs: Extra options.

    Yields:
        int: The next number.
    """
    summary, _, params, returns = parse_google_docstring(doc)
    assert summary == "Iterates."
    assert params == {"n": "How many.", "args": "Extra values.", "kwargs": "Extra options."}
    assert returns == "int: The next number."

    inline = parse_google_docstring("Gets it.\n\nReturns: str: the path.")
    assert inline[3] == "str: the path."


def test_nested_parentheses_in_type_and_colon_in_text():
    doc = """Summary.

    Args:
        f (Callable[[int], tuple(int, int)]): Maps: a to b.
    """
    parsed = parse_docstring(doc)
    assert parsed.param_types == {"f": "Callable[[int], tuple(int, int)]"}
    assert parsed.params == {"f": "Maps: a to b."}


def test_empty_and_summary_only():
    assert parse_google_docstring(None) == ("", "", {}, "")
    assert parse_google_docstring("   ") == ("", "", {}, "")
    assert parse_google_docstring("Just a summary.") == ("Just a summary.", "", {}, "")


def test_word_args_inside_prose_is_not_a_section():
    doc = """Summary.

    Args: are described below in prose, not a section header.
    """
    summary, description, params, _ = parse_google_docstring(doc)
    assert params == {}
    assert description == "Args: are described below in prose, not a section header."
