"""Tests for the generated command line (spectralmatch.cli) using dummy functions."""

from __future__ import annotations

import argparse
import math
import subprocess
import sys

import pytest

import spectralmatch
from spectralmatch import cli
from spectralmatch.errors import ParameterError

CALLS: list[tuple[str, dict]] = []


def adjust_images(
    input_images: str | list[str],
    output_images: str | list[str],
    *,
    calculation_dtype: str = "float32",
    window_size: int | tuple[int, int] | None = None,
    image_parallel_workers: tuple[str, str | int] | None = None,
    custom_nodata_value: float | int | None = None,
    debug_logs: bool = False,
    save_as_cog: bool = True,
) -> list[str]:
    """Adjusts images so that they match (100% dummy).

    Longer description of the dummy command.

    Args:
        input_images (str | List[str]): Input files from a glob, a folder
            or a list of paths.
        output_images: Output template with $.
        calculation_dtype: Data type used for internal calculations.
        window_size: Tile size for reading and writing.
        image_parallel_workers: Parallelization strategy at the image level.
        custom_nodata_value: Overrides the detected nodata value.
        debug_logs: Prints debug information.
        save_as_cog: Writes Cloud-Optimized GeoTIFFs.

    Returns:
        List[str]: Paths of the adjusted images.
    """
    CALLS.append(("adjust_images", dict(locals())))
    return ["out/one.tif", "out/two.tif"]


def ndvi(input_images, output_images, nir_band_index: int, red_band_index: int, *, scale=1.0):
    """Computes NDVI.

    Args:
        input_images: Inputs.
        output_images: Outputs.
        nir_band_index: 1-based NIR band.
        red_band_index: 1-based red band.
        scale: Multiplier.
    """
    CALLS.append(("ndvi", dict(locals())))


def fail(reason: str = "boom", kind: str = "parameter"):
    """Always fails.

    Args:
        reason: Message of the error.
        kind: "parameter", "os" or "interrupt".
    """
    if kind == "interrupt":
        raise KeyboardInterrupt
    if kind == "os":
        raise FileNotFoundError(reason)
    raise ParameterError(reason)


def count(n: int = 3):
    """Counts up.

    Args:
        n: How far.
    """
    return 42 if n == 0 else None


FUNCS = {"adjust_images": adjust_images, "ndvi": ndvi, "fail": fail, "count": count}


@pytest.fixture(autouse=True)
def _reset_calls(monkeypatch):
    CALLS.clear()
    monkeypatch.delenv("SPECTRALMATCH_DEBUG", raising=False)
    monkeypatch.setenv("COLUMNS", "100")  # stable help wrapping


def run(argv, capsys):
    code = cli.main(argv, functions=FUNCS)
    out, err = capsys.readouterr()
    return code, out, err


def last_call(name):
    assert CALLS, "the function was not called"
    called, kwargs = CALLS[-1]
    assert called == name
    return kwargs


# --------------------------------------------------------------------------- help and version


def test_parser_has_one_subcommand_per_function_in_order():
    parser = cli.build_parser(FUNCS)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == ["adjust_images", "ndvi", "fail", "count"]
    assert sub.choices["ndvi"].prog == "spectralmatch ndvi"


def test_top_level_help_lists_commands_with_summaries(capsys):
    code, out, err = run(["--help"], capsys)
    assert code == 0 and err == ""
    assert out.startswith("usage: spectralmatch")
    lines = {
        line.split(None, 1)[0]: line.split(None, 1)[1].strip()
        for line in out.splitlines()
        if line.startswith("    ")
    }
    assert lines == {
        "adjust_images": "Adjusts images so that they match (100% dummy).",
        "ndvi": "Computes NDVI.",
        "fail": "Always fails.",
        "count": "Counts up.",
    }


def test_command_help_shows_types_defaults_and_docs(capsys):
    code, out, err = run(["adjust_images", "--help"], capsys)
    assert code == 0 and err == ""
    flat = " ".join(out.split())
    assert "usage: spectralmatch adjust_images [options] input_images output_images" in flat
    assert "Longer description of the dummy command." in flat
    assert (
        "input_images Input files from a glob, a folder or a list of paths. "
        "[type: str | list[str]; required; also accepted as --input_images / --input-images]"
    ) in flat
    assert (
        "--window_size, --window-size VALUE Tile size for reading and writing. "
        "[type: int | tuple[int, int] | None; default: None]"
    ) in flat
    assert (
        "--calculation_dtype, --calculation-dtype VALUE Data type used for internal "
        "calculations. [type: str; default: 'float32']"
    ) in flat
    assert (
        "--debug_logs, --debug-logs [BOOL] Prints debug information. [type: bool; default: False]"
    ) in flat
    assert "Returns: List[str]: Paths of the adjusted images." in flat


def test_command_help_without_annotations_or_docs(capsys):
    def bare(path, level=2):
        pass

    code = cli.main(["bare", "-h"], functions={"bare": bare})
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0
    assert "path [required; also accepted as --path]" in out
    assert "--level VALUE [default: 2]" in out


def test_version_flag(capsys):
    code, out, err = run(["--version"], capsys)
    assert (code, out, err) == (0, f"spectralmatch {spectralmatch.__version__}\n", "")
    # The parser itself knows the flag too.
    with pytest.raises(SystemExit) as exc:
        cli.build_parser(FUNCS).parse_args(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"spectralmatch {spectralmatch.__version__}\n"


def test_python_m_spectralmatch_version():
    proc = subprocess.run(
        [sys.executable, "-m", "spectralmatch", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"spectralmatch {spectralmatch.__version__}\n"


def test_importing_the_cli_does_not_import_the_numeric_stack():
    code = (
        "import sys, spectralmatch.cli, spectralmatch._docstrings; "
        "print(sorted(m for m in ('numpy', 'osgeo', 'matplotlib', 'scipy') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --------------------------------------------------------------------------- arguments


def test_positionals_and_defaults(capsys):
    code, out, err = run(["adjust_images", "/data/*.tif", "/out/$_Global.tif"], capsys)
    assert code == 0 and err == ""
    kwargs = last_call("adjust_images")
    assert kwargs == {
        "input_images": "/data/*.tif",
        "output_images": "/out/$_Global.tif",
        "calculation_dtype": "float32",
        "window_size": None,
        "image_parallel_workers": None,
        "custom_nodata_value": None,
        "debug_logs": False,
        "save_as_cog": True,
    }
    # The returned list is printed one item per line.
    assert out == "out/one.tif\nout/two.tif\n"


@pytest.mark.parametrize("spelling", ["snake", "kebab"])
def test_options_in_snake_and_kebab_case(capsys, spelling):
    def opt(name):
        return "--" + (name if spelling == "snake" else name.replace("_", "-"))

    argv = [
        "adjust_images",
        opt("input_images"),
        "['a.tif', 'b.tif']",
        opt("output_images"),
        "out",
        opt("window_size"),
        "(256, 512)",
        opt("image_parallel_workers"),
        "('process', 4)",
        opt("calculation_dtype"),
        "float64",
        opt("custom_nodata_value"),
        "-9999",
    ]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    kwargs = last_call("adjust_images")
    assert kwargs["input_images"] == ["a.tif", "b.tif"]
    assert kwargs["output_images"] == "out"
    assert kwargs["window_size"] == (256, 512)
    assert kwargs["image_parallel_workers"] == ("process", 4)
    assert kwargs["calculation_dtype"] == "float64"
    assert kwargs["custom_nodata_value"] == -9999 and isinstance(kwargs["custom_nodata_value"], int)


def test_positional_given_as_option_frees_its_slot(capsys):
    code, _, err = run(["adjust_images", "--input-images", "in/", "out/"], capsys)
    assert code == 0, err
    kwargs = last_call("adjust_images")
    assert (kwargs["input_images"], kwargs["output_images"]) == ("in/", "out/")

    code, _, err = run(["adjust_images", "in/", "--output_images", "o/"], capsys)
    assert code == 0, err
    kwargs = last_call("adjust_images")
    assert (kwargs["input_images"], kwargs["output_images"]) == ("in/", "o/")


def test_options_and_positionals_intermixed(capsys):
    argv = ["adjust_images", "a.tif", "--window_size", "64", "b.tif", "--debug_logs"]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    kwargs = last_call("adjust_images")
    assert (kwargs["input_images"], kwargs["output_images"]) == ("a.tif", "b.tif")
    assert kwargs["window_size"] == 64 and kwargs["debug_logs"] is True


def test_positional_literals_in_signature_order(capsys):
    code, out, err = run(["ndvi", "in.tif", "out.tif", "3", "1", "--scale", "0.5"], capsys)
    assert code == 0, err
    assert out == ""  # None is not printed
    assert last_call("ndvi") == {
        "input_images": "in.tif",
        "output_images": "out.tif",
        "nir_band_index": 3,
        "red_band_index": 1,
        "scale": 0.5,
    }


@pytest.mark.parametrize(
    "text, expected",
    [
        ("('process', 4)", ("process", 4)),
        ('("thread", "cpu")', ("thread", "cpu")),
        ("[1, 2.5, 'x']", [1, 2.5, "x"]),
        ("{'a': 1}", {"a": 1}),
        ("None", None),
        ("42", 42),
        ("-7", -7),
        ("1e3", 1000.0),
        ("True", True),
        ("False", False),
        ("'quoted'", "quoted"),
        ("/x/*.tif", "/x/*.tif"),
        ("float32", "float32"),
        ("b1 > 0", "b1 > 0"),
        ("C:\\data\\a.tif", "C:\\data\\a.tif"),
        ("__import__('os')", "__import__('os')"),  # never evaluated
        ("", ""),
    ],
)
def test_parse_value_literals_and_plain_strings(text, expected):
    value = cli.parse_value(text)
    assert value == expected and type(value) is type(expected)


def test_literal_values_through_the_command_line(capsys):
    argv = [
        "adjust_images",
        "a",
        "b",
        "--window-size",
        "None",
        "--custom_nodata_value",
        "nan",
        "--image_parallel_workers",
        "['thread', 'cpu']",
    ]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    kwargs = last_call("adjust_images")
    assert kwargs["window_size"] is None
    assert math.isnan(kwargs["custom_nodata_value"])
    assert kwargs["image_parallel_workers"] == ["thread", "cpu"]


def test_str_annotation_keeps_text_and_negative_values_are_values(capsys):
    argv = [
        "adjust_images",
        "a",
        "b",
        "--calculation_dtype",
        "123",
        "--custom-nodata-value",
        "-1e30",
    ]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    kwargs = last_call("adjust_images")
    assert kwargs["calculation_dtype"] == "123"
    assert kwargs["custom_nodata_value"] == -1e30


@pytest.mark.parametrize(
    "flags, debug_logs, save_as_cog",
    [
        ([], False, True),
        (["--debug_logs"], True, True),
        (["--debug-logs", "True"], True, True),
        (["--debug_logs", "False"], False, True),
        (["--debug_logs=false", "--save-as-cog=0"], False, False),
        (["--save_as_cog", "False", "--debug_logs", "true"], True, False),
    ],
)
def test_boolean_flag_forms(capsys, flags, debug_logs, save_as_cog):
    code, _, err = run(["adjust_images", "a", "b", *flags], capsys)
    assert code == 0, err
    kwargs = last_call("adjust_images")
    assert kwargs["debug_logs"] is debug_logs and kwargs["save_as_cog"] is save_as_cog


def test_bare_flag_does_not_swallow_the_next_positional(capsys):
    code, _, err = run(["adjust_images", "--debug_logs", "a.tif", "b.tif"], capsys)
    assert code == 0, err
    kwargs = last_call("adjust_images")
    assert kwargs["debug_logs"] is True
    assert (kwargs["input_images"], kwargs["output_images"]) == ("a.tif", "b.tif")


# --------------------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: COMMAND"),
        (["nope"], "invalid choice: 'nope'"),
        (["adjust_images", "a"], "the following arguments are required: output_images"),
        (["adjust_images"], "the following arguments are required: input_images, output_images"),
        (["adjust_images", "a", "b", "c"], "unrecognized arguments: c"),
        (["adjust_images", "a", "b", "--bogus", "1"], "unrecognized arguments: --bogus 1"),
        (["adjust_images", "a", "b", "--debug_logs=maybe"], "expected True or False"),
        (["adjust_images", "a", "b", "--window"], "unrecognized arguments: --window"),
    ],
)
def test_usage_errors_exit_2(capsys, argv, message):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out == ""
    assert "usage: spectralmatch" in err and message in err
    assert CALLS == []


def test_runtime_error_exits_1_with_one_line(capsys):
    code, out, err = run(["fail", "--reason", "band 4 of 'a.tif'\ndoes not exist"], capsys)
    assert code == 1 and out == ""
    assert err == "spectralmatch: error: band 4 of 'a.tif' does not exist\n"


def test_unexpected_error_names_its_type(capsys):
    code, _, err = run(["fail", "--kind", "os", "--reason", "missing.tif"], capsys)
    assert code == 1
    assert err == "spectralmatch: error: FileNotFoundError: missing.tif\n"


def test_debug_env_shows_traceback(capsys, monkeypatch):
    monkeypatch.setenv("SPECTRALMATCH_DEBUG", "1")
    code, _, err = run(["fail"], capsys)
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().splitlines()[-1] == "spectralmatch: error: boom"


def test_keyboard_interrupt_exits_130(capsys):
    code, out, err = run(["fail", "--kind", "interrupt"], capsys)
    assert (code, out, err) == (130, "", "spectralmatch: interrupted\n")


def test_scalar_result_printed_and_success_is_0(capsys):
    assert run(["count", "--n", "0"], capsys) == (0, "42\n", "")
    assert run(["count"], capsys) == (0, "", "")


def test_library_info_logs_reach_stderr_and_handler_is_removed(capsys):
    import logging

    def talk():
        """Talks."""
        logging.getLogger("spectralmatch.match").info("Start talk")

    logger = logging.getLogger("spectralmatch")
    handlers, level = list(logger.handlers), logger.level
    assert cli.main(["talk"], functions={"talk": talk}) == 0
    assert "Start talk" in capsys.readouterr().err
    assert logger.handlers == handlers and logger.level == level


# --------------------------------------------------------------------------- real functions


def test_real_public_functions_build_when_available(capsys):
    public = getattr(spectralmatch, "public_functions", None)
    if public is None:
        pytest.skip("spectralmatch.public_functions() is not available yet")
    try:
        names = list(public())
    except ModuleNotFoundError as exc:  # modules still being written
        if not (exc.name or "").startswith("spectralmatch."):
            raise
        pytest.skip(f"public module {exc.name} does not exist yet")
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in names:
        assert f"    {name}" in out
        assert cli.main([name, "--help"]) == 0
        assert capsys.readouterr().out.startswith(f"usage: spectralmatch {name}")
