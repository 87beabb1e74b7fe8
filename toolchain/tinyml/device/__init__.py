"""The board at the other end of a cable: flashing it and talking to it.

Owns: the protocol link with its one reconnect loop (`link`), the human-mode monitor
(`monitor`), flashing and board preparation (`flash`) through the PlatformIO back end
(`platformio`), and the stand-ins for a board: the Python twin of the firmware's protocol
server (`protocol_twin`), the virtual board on a pty (`virtual_board`), whose capture app
replays recordings (`sensor_replay`), and the emulated board: the rendered firmware on QEMU
(`emulator`); and recording takes from the capture app (`capture`).

May import: core, model, features, firmware.
"""
