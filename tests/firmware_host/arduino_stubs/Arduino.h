// Declarations of the Arduino core API the firmware uses, so the host tests compile the
// sketch glue strictly (-Wall -Wextra -Werror) without a board. Compile only: nothing links.
#ifndef TINYML_TEST_ARDUINO_H_
#define TINYML_TEST_ARDUINO_H_

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

unsigned long micros();
unsigned long millis();

class HardwareSerialStub {
 public:
  void begin(unsigned long baud);
  int available();
  int read();
  size_t write(const uint8_t* data, size_t len);
};
extern HardwareSerialStub Serial;

#endif  // TINYML_TEST_ARDUINO_H_
