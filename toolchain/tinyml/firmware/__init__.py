"""The firmware: everything written for the board, from profiles and templates.

Owns: board profiles (`boards`), the model as C++ (`convert`), the one code-generation helper
(`codegen`: banner, C literals, the Jinja environment), the app catalogue (`apps`), the
serial protocol's one definition (`protocol`), `platformio.ini` (`platformio_ini`), the
project's files (`render`), the project manifest with ownership-aware writing
(`manifest`), and where the board's TFLM library source is on this machine (`library_source`).

The protocol lives here, below device: it is what the firmware speaks. render needs it to
write `tinyml_protocol.h`, and device needs it to talk to the board.

May import: core, model, features.
"""
