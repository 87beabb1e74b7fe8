"""The foundation every stage stands on: errors, safe file writes, subprocesses, data files.

Owns: the error family and its exit codes (`errors`), atomic writes and the --force rule
(`files`), the one subprocess wrapper (`tools`), where the shipped templates and board
profiles live (`resources`), reading data sets and label files (`data`), and the cached
parallel C/C++ build that compiles a board's TFLM library (`native_build`).

May import: nothing else of tinyml.
"""
