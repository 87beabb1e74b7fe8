// The firmware's byte stream: the board's USB serial port (Arduino `Serial`).
#ifndef TINYML_SERIAL_TRANSPORT_H_
#define TINYML_SERIAL_TRANSPORT_H_

#include <Arduino.h>

#include "transport.h"

namespace tinyml {

class SerialTransport : public Transport {
 public:
  int read() override { return Serial.available() > 0 ? Serial.read() : -1; }
  void write(const uint8_t* data, size_t len) override { Serial.write(data, len); }
  uint32_t micros() override { return ::micros(); }
};

}  // namespace tinyml

#endif  // TINYML_SERIAL_TRANSPORT_H_
