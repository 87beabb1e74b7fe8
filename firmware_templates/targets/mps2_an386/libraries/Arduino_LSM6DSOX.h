// Stand-in for the Arduino_LSM6DSOX library on the emulated board: the IMU replays a recording.
#ifndef TINYML_EMULATOR_ARDUINO_LSM6DSOX_H_
#define TINYML_EMULATOR_ARDUINO_LSM6DSOX_H_

#include "imu_replay.h"

#endif  // TINYML_EMULATOR_ARDUINO_LSM6DSOX_H_
