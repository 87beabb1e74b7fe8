// Stand-in for the Arduino_LSM9DS1 library on the emulated board: the IMU replays a recording.
#ifndef TINYML_EMULATOR_ARDUINO_LSM9DS1_H_
#define TINYML_EMULATOR_ARDUINO_LSM9DS1_H_

#include "imu_replay.h"

#endif  // TINYML_EMULATOR_ARDUINO_LSM9DS1_H_
