// The newlib system calls of the emulated board: the heap between .bss and the stack, output to
// the serial port, exit through semihosting (QEMU exits with the code).
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "semihosting.h"
#include "uart0.h"

// From the linker script.
extern char __heap_start[], __heap_end[];

void* _sbrk(ptrdiff_t increment) {
  static char* brk = __heap_start;
  if (increment > __heap_end - brk || increment < __heap_start - brk) {
    errno = ENOMEM;
    return (void*)-1;
  }
  char* previous = brk;
  brk += increment;
  return previous;
}

int _write(int fd, const char* data, int len) {
  (void)fd;  // stdout and stderr both go to the serial port, as on the board
  for (int i = 0; i < len; ++i) uart0_write((uint8_t)data[i]);
  return len;
}

int _read(int fd, char* data, int len) {
  (void)fd;
  (void)data;
  (void)len;
  return 0;  // stdin is at its end: firmware reads the serial port through Serial
}

void _exit(int code) { semihosting_exit(code); }

int _kill(int pid, int signal) {
  (void)pid;
  semihosting_exit(128 + signal);  // abort() arrives here with SIGABRT, as a shell would report it
}

int _getpid(void) { return 1; }

int _close(int fd) {
  (void)fd;
  return -1;
}

int _fstat(int fd, struct stat* st) {
  (void)fd;
  st->st_mode = S_IFCHR;
  return 0;
}

int _isatty(int fd) {
  (void)fd;
  return 1;
}

int _lseek(int fd, int offset, int whence) {
  (void)fd;
  (void)offset;
  (void)whence;
  return 0;
}
