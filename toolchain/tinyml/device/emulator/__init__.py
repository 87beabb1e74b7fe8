"""The emulated board: the rendered firmware, built against the board's real TFLM library, on QEMU."""
