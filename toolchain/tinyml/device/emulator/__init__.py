"""The emulated board: the rendered firmware, built against the board's real TFLM library, on QEMU.

`build` cross-compiles a rendered project (the library once, into the user's cache), `qemu`
runs the ELF on mps2-an386 with its UART on a socket, `recordings` writes what the sensor
stand-ins replay, `session` is the API of `tinyml emulate` (build, then run), and `measure`
what deploy takes from the emulated board (arena, memory by part, instructions).
"""
