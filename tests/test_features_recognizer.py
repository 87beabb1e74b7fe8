"""The KWS app's score smoothing (recognizer.cpp), compiled on the host and driven with score streams."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import require_tool

from tinyml.firmware.apps import render_plain_sources
from tinyml.features.logmel import LogMelSpec

# Labels: 0 silence, 1 unknown, 2 yes, 3 no. Reads lines "time_ms s0 s1 s2 s3" (int8 scores)
# from stdin; prints "time label score" for every new detection.
HARNESS = r"""
#include <stdio.h>
#include "recognizer.h"

int main() {
  tinyml::Recognizer recognizer(4, 0, 1000, 200, 1500, 3);
  unsigned time_ms;
  int a, b, c, d;
  while (scanf("%u %d %d %d %d", &time_ms, &a, &b, &c, &d) == 5) {
    const int8_t scores[4] = {static_cast<int8_t>(a), static_cast<int8_t>(b), static_cast<int8_t>(c), static_cast<int8_t>(d)};
    tinyml::Detection detection;
    if (!recognizer.process(scores, time_ms, &detection)) {
      printf("%u error\n", time_ms);
      continue;
    }
    if (detection.is_new) printf("%u %u %u\n", time_ms, static_cast<unsigned>(detection.label), static_cast<unsigned>(detection.score));
  }
  return 0;
}
"""

SILENCE = (127, -128, -128, -128)
YES = (-128, -128, 127, -128)
NO = (-128, -128, -128, 127)


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gxx = require_tool("g++")
    build = tmp_path_factory.mktemp("recognizer")
    render_plain_sources("kws", {"logmel": LogMelSpec().template_context()}, build)
    (build / "main.cpp").write_text(HARNESS)
    exe = build / "recognizer"
    subprocess.run([gxx, "-std=gnu++14", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(build / "main.cpp"), str(build / "recognizer.cpp")], check=True, capture_output=True)
    return exe


def _detections(exe: Path, stream: list[tuple[int, tuple[int, ...]]]) -> list[tuple[int, ...]]:
    text = "".join(f"{t} {' '.join(map(str, s))}\n" for t, s in stream)
    out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True).stdout
    return [tuple(int(v) if v.isdigit() else v for v in line.split()) for line in out.splitlines()]


def _every_100ms(start: int, end: int, scores: tuple[int, ...]) -> list[tuple[int, tuple[int, ...]]]:
    return [(t, scores) for t in range(start, end, 100)]


def test_a_held_keyword_is_reported_once(recognizer: Path) -> None:
    stream = _every_100ms(0, 1000, SILENCE) + _every_100ms(1000, 5000, YES) + _every_100ms(5000, 6000, SILENCE)
    found = _detections(recognizer, stream)
    assert len(found) == 1
    time_ms, label, score = found[0]
    assert label == 2 and score > 200 and 1000 < time_ms < 2000


def test_the_same_keyword_after_a_pause_is_reported_again(recognizer: Path) -> None:
    stream = _every_100ms(0, 1000, YES) + _every_100ms(1000, 3000, SILENCE) + _every_100ms(3000, 4000, YES)
    assert [d[1] for d in _detections(recognizer, stream)] == [2, 2]


def test_silence_alone_is_never_reported(recognizer: Path) -> None:
    assert _detections(recognizer, _every_100ms(0, 5000, SILENCE)) == []


def test_a_second_keyword_inside_the_suppression_time_is_not_reported(recognizer: Path) -> None:
    stream = _every_100ms(0, 500, YES) + _every_100ms(500, 1600, NO) + _every_100ms(1600, 4000, SILENCE) + _every_100ms(4000, 5000, NO)
    found = _detections(recognizer, stream)
    # "yes" at once; "no" reaches the threshold ~1.3 s later, inside the 1.5 s suppression;
    # the "no" after the pause is reported.
    assert [d[1] for d in found] == [2, 3]
    assert found[0][0] < 500 and found[1][0] > 4000


def test_too_few_results_in_the_window_report_nothing(recognizer: Path) -> None:
    # One result per 600 ms: never three inside the 1000 ms average window.
    stream = [(t, YES) for t in range(0, 6000, 600)]
    assert _detections(recognizer, stream) == []


def test_time_going_backwards_is_refused(recognizer: Path) -> None:
    found = _detections(recognizer, [(1000, SILENCE), (900, SILENCE)])
    assert found == [(900, "error")]
