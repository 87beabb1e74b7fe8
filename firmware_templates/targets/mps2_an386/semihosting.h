// Arm semihosting (Semihosting for AArch32 and AArch64, version 2): the emulated board's
// channel to the host, besides the UART. QEMU serves it with
// `-semihosting-config enable=on,target=native`: files are opened relative to QEMU's working
// directory (where the host puts the sensor recordings), the console is QEMU's stderr, and
// exit ends QEMU with the given exit code.
#ifndef TINYML_EMULATOR_SEMIHOSTING_H_
#define TINYML_EMULATOR_SEMIHOSTING_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// QEMU exit codes that the host tells apart from an exit() of the firmware's own.
#define EMULATOR_EXIT_HARDFAULT 240
#define EMULATOR_EXIT_UNEXPECTED_INTERRUPT 241

// Opens `path` for binary reading; returns a handle, or -1.
int semihosting_open(const char* path);
// Reads up to `len` bytes; returns how many were read (0 at the end of the file).
size_t semihosting_read(int handle, void* buffer, size_t len);
// Moves to byte `position` from the start; false if it cannot.
bool semihosting_seek(int handle, size_t position);
// The file's length in bytes, or -1.
long semihosting_length(int handle);
void semihosting_close(int handle);
// Writes a NUL-terminated string to the host's console (QEMU's stderr).
void semihosting_write0(const char* text);
// Ends the emulation: QEMU exits with `code`.
void semihosting_exit(int code) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif  // TINYML_EMULATOR_SEMIHOSTING_H_
