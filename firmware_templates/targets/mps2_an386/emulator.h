// Messages of the emulated board itself (not of the firmware), all starting "tinyml-emulator: ".
#ifndef TINYML_EMULATOR_EMULATOR_H_
#define TINYML_EMULATOR_EMULATOR_H_

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

// One line to the host's console (QEMU's stderr, which the runner shows), and also to the
// serial port when `on_serial` (only at startup: later the host may be speaking binary).
void emulator_notice(const char* text, bool on_serial);

#ifdef __cplusplus
}
#endif

#endif  // TINYML_EMULATOR_EMULATOR_H_
