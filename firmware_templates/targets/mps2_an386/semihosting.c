#include "semihosting.h"

#include <string.h>

// Operation numbers (Semihosting v2, 6.1).
enum {
  SYS_OPEN = 0x01,
  SYS_CLOSE = 0x02,
  SYS_WRITE0 = 0x04,
  SYS_READ = 0x06,
  SYS_SEEK = 0x0A,
  SYS_FLEN = 0x0C,
  SYS_EXIT_EXTENDED = 0x20,
};
// SYS_OPEN mode 1 is fopen's "rb".
#define OPEN_MODE_READ_BINARY 1
// The reason code of a normal end of the application.
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

// On M-profile the call is BKPT 0xAB with the operation in r0 and the argument in r1.
static int semihosting_call(int operation, const void* argument) {
  register int r0 __asm__("r0") = operation;
  register const void* r1 __asm__("r1") = argument;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

int semihosting_open(const char* path) {
  const uint32_t block[3] = {(uint32_t)path, OPEN_MODE_READ_BINARY, (uint32_t)strlen(path)};
  return semihosting_call(SYS_OPEN, block);
}

size_t semihosting_read(int handle, void* buffer, size_t len) {
  const uint32_t block[3] = {(uint32_t)handle, (uint32_t)buffer, (uint32_t)len};
  // The call returns the number of bytes NOT read.
  const int left = semihosting_call(SYS_READ, block);
  return left < 0 || (size_t)left > len ? 0 : len - (size_t)left;
}

bool semihosting_seek(int handle, size_t position) {
  const uint32_t block[2] = {(uint32_t)handle, (uint32_t)position};
  return semihosting_call(SYS_SEEK, block) == 0;
}

long semihosting_length(int handle) {
  const uint32_t block[1] = {(uint32_t)handle};
  return semihosting_call(SYS_FLEN, block);
}

void semihosting_close(int handle) {
  const uint32_t block[1] = {(uint32_t)handle};
  semihosting_call(SYS_CLOSE, block);
}

void semihosting_write0(const char* text) { semihosting_call(SYS_WRITE0, text); }

void semihosting_exit(int code) {
  // On AArch32, plain SYS_EXIT (0x18) carries no exit code (QEMU exits with 0 or 1); SYS_EXIT_EXTENDED
  // takes the reason and the code in a block.
  const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
  semihosting_call(SYS_EXIT_EXTENDED, block);
  for (;;) {
  }
}
