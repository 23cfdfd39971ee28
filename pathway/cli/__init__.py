"""The ``pathway`` command line; every library module below this package is free of CLI code."""

from pathway.cli.main import main

__all__ = ["main"]
