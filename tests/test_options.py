"""Every numeric option of every command refuses values outside its range in one line, exit code 2.

The options are found by walking the parser, so a new option is covered the day it is added,
and an option that takes a bare int or float (which accepts -1, 0 and nan) fails the test.
"""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyml.cli import build_parser
from tinyml.cli.options import finite_float, fraction, non_negative_float, non_negative_int, positive_float, positive_int, probability

# Options a bare int or float may take: every seed is meaningful, and the sparsity's open
# interval (0, 1) is checked by OptimizeSettings, whose message names it (nan included).
UNCHECKED_BY_THE_PARSER = {("virtual-board", "--seed"), ("optimize", "--prune"), ("compare", "--prune")}

NOT_NUMBERS = st.sampled_from(["nan", "inf", "-inf", "", "ten", "1e999", "0x10"])
BAD_VALUES = {
    positive_int: st.integers(max_value=0).map(str) | st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: v != int(v)).map(repr) | NOT_NUMBERS,
    non_negative_int: st.integers(max_value=-1).map(str) | st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: v != int(v)).map(repr) | NOT_NUMBERS,
    finite_float: NOT_NUMBERS,
    positive_float: st.floats(max_value=0).map(repr) | NOT_NUMBERS,
    non_negative_float: st.floats(max_value=0, exclude_max=True).map(repr) | NOT_NUMBERS,
    fraction: (st.floats(max_value=0, exclude_max=True) | st.floats(min_value=1, exclude_min=True)).map(repr) | NOT_NUMBERS,
    probability: (st.floats(max_value=0, exclude_max=True) | st.floats(min_value=1)).map(repr) | NOT_NUMBERS,
}


def _numeric_options() -> list[tuple[str, str, object]]:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = []
    seen = set()
    for name, sub in commands.choices.items():
        if id(sub) in seen:
            continue
        seen.add(id(sub))
        for action in sub._actions:
            if action.type is not None and action.option_strings:
                found.append((name, action.option_strings[-1], action.type))
    return found


OPTIONS = _numeric_options()


def test_every_numeric_option_has_a_checked_type() -> None:
    unchecked = [(c, o) for c, o, t in OPTIONS if t in (int, float) and (c, o) not in UNCHECKED_BY_THE_PARSER]
    assert not unchecked, f"options that accept -1, 0 or nan: {unchecked}"
    assert len([o for o in OPTIONS if o[2] in BAD_VALUES]) >= 15


@pytest.mark.parametrize(("command", "option", "kind"), [o for o in OPTIONS if o[2] in BAD_VALUES], ids=lambda v: getattr(v, "__name__", v))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_out_of_range_values_are_refused_in_one_line(command: str, option: str, kind, data: st.DataObject) -> None:
    value = data.draw(BAD_VALUES[kind])
    stderr = io.StringIO()
    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stderr(stderr):
        build_parser().parse_args([command, f"{option}={value}"])
    assert exit_info.value.code == 2
    err = stderr.getvalue()
    assert err.count("\n") == 1 and f"argument {option}" in err and "Fix:" in err, err
