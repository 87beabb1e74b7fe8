"""Embedded-ML labs, end to end: data, features, a small model, int8, firmware, validation.

- `python -m tinyml.labs.gesture --out DIR`: shoulder exercises from a smartwatch IMU.
- `python -m tinyml.labs.keyword_spotting --out DIR`: synthesised spoken keywords.

Each lab module exposes its steps as functions (data loading, model building, training, the
whole run) so that a notebook or a bench script can reuse or replace any of them. The
pipeline after training is `tinyml.deploy`: the same code path as `tinyml deploy`.

Examples built on the public API: nothing else in tinyml imports the labs.

May import: everything (cli included).
"""
