// The Arduino core of the emulated board: `Serial` on UART0, and main(), which runs the sketch
// as the Arduino core does (setup() once, loop() forever).
#include <Arduino.h>

#include "clock.h"
#include "emulator.h"
#include "mps2_an386.h"
#include "semihosting.h"
#include "uart0.h"

EmulatedSerial Serial;

void EmulatedSerial::begin(unsigned long baud) { uart0_begin(baud); }

int EmulatedSerial::available() { return static_cast<int>(uart0_available()); }

int EmulatedSerial::read() { return uart0_read(); }

size_t EmulatedSerial::write(uint8_t byte) {
  uart0_write(byte);
  return 1;
}

size_t EmulatedSerial::write(const uint8_t* data, size_t len) {
  for (size_t i = 0; i < len; ++i) uart0_write(data[i]);
  return len;
}

void EmulatedSerial::flush() { uart0_flush(); }

size_t EmulatedSerial::print(const char* text) { return write(reinterpret_cast<const uint8_t*>(text), strlen(text)); }

size_t EmulatedSerial::print(char c) { return write(static_cast<uint8_t>(c)); }

size_t EmulatedSerial::print(unsigned long value) {
  char digits[11];
  size_t n = sizeof(digits);
  do {
    digits[--n] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0);
  return write(reinterpret_cast<const uint8_t*>(digits + n), sizeof(digits) - n);
}

size_t EmulatedSerial::print(long value) {
  if (value >= 0) return print(static_cast<unsigned long>(value));
  return print('-') + print(0ul - static_cast<unsigned long>(value));
}

size_t EmulatedSerial::println() { return print("\r\n"); }

void emulator_notice(const char* text, bool on_serial) {
  semihosting_write0("tinyml-emulator: ");
  semihosting_write0(text);
  semihosting_write0("\n");
  if (on_serial) {
    Serial.print("tinyml-emulator: ");
    Serial.println(text);
  }
}

int main() {
  clock_begin();
  uart0_begin(115200);
  setup();
  for (;;) {
    loop();
    // Nothing received: sleep until the next interrupt (a byte, the millisecond tick, a
    // sensor). Besides sparing the host's CPU, this is what lets QEMU hand over the next byte
    // soon: it moves a byte from the socket into the UART only on an iteration of its main
    // loop, and a vCPU going idle is what wakes that loop (see NOTES.md). Interrupts are masked
    // around the check, so a byte arriving in between still ends the WFI at once.
    noInterrupts();
    if (uart0_available() == 0) __asm__ volatile("wfi");
    interrupts();
  }
}
