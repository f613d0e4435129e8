"""Makes ``python -m spectralmatch`` run the command-line interface."""

from spectralmatch.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
