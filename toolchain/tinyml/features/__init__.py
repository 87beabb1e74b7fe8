"""Feature front ends, each defined once and shared by training (numpy) and firmware (C++).

- `tinyml.features.imu`: IMU windowing and normalisation for the gesture lab.
- `tinyml.features.logmel`: the log-mel spectrogram for the keyword-spotting lab.
- `tinyml.features.recognizer`: the score smoothing of the keyword-spotting firmware.
- `tinyml.features.recordings`: a recorded dataset, the raw samples these front ends start
  from (`tinyml capture` writes it, the labs read it).

Each spec is a frozen dataclass. Its numpy methods turn recordings into model inputs on the
host, and `template_context()` gives the numbers the firmware's C++ is rendered from, so the
board computes the same features from live samples.

May import: core.
"""
