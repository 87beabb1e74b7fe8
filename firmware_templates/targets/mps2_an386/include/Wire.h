// Stand-in for the mbed core's Wire.h: the I2C master API that the TFLM library's audio-HAT
// driver (peripherals/i2c_arduino.cpp) names. The emulated board has no I2C bus, so this is
// declared only, like the pins in <Arduino.h>: it compiles, and it fails to link if used.
#ifndef TINYML_EMULATOR_WIRE_H_
#define TINYML_EMULATOR_WIRE_H_

#include <Arduino.h>

namespace arduino {

class MbedI2C {
 public:
  void begin();
  void setClock(uint32_t frequency);
  void beginTransmission(uint8_t address);
  size_t write(uint8_t data);
  uint8_t endTransmission(bool stop = true);
  size_t requestFrom(uint8_t address, size_t len, bool stop = true);
  int read();
};

}  // namespace arduino

extern arduino::MbedI2C Wire;
extern arduino::MbedI2C Wire1;

#endif  // TINYML_EMULATOR_WIRE_H_
