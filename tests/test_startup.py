"""Fast start: importing spectralmatch and `spectralmatch --help` load no heavy module."""
import subprocess
import sys

HEAVY = ("scipy", "matplotlib", "torch", "omnicloudmask", "dask")


def _loaded_after(code: str) -> list[str]:
    probe = (f"import sys\n{code}\n"
             f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, timeout=60)
    return result.stdout.split()


def test_import_loads_no_algorithm_dependencies():
    loaded = _loaded_after("import spectralmatch")
    assert not {"numpy", "osgeo", *HEAVY} & set(loaded)


def test_help_of_every_command_loads_no_heavy_module():
    code = ("from spectralmatch.cli import main\n"
            "import contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            "    for name in ('global_regression', 'local_block_adjustment', "
            "'voronoi_center_seamline'):\n"
            "        try:\n            main([name, '--help'])\n        except SystemExit:\n"
            "            pass")
    assert not set(HEAVY) & set(_loaded_after(code))
