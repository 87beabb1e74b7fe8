"""Does the board compute what the host computes? Validation over the link, and its report.

Owns: `validate_device` (`validate`), the session over the link with its sample log and
resume (`session`), the metrics (`metrics`), the report and its verdict (`report`), and the
report files, JSON and HTML (`report_files`).

May import: core, model, firmware, device.
"""
