"""`python -m tinyml` runs the command line, for when the `tinyml` script is not on PATH."""

from tinyml.cli import entry_point

entry_point()
