// Stand-in for the Arduino_BMI270_BMM150 library on the emulated board: the IMU replays a recording.
#ifndef TINYML_EMULATOR_ARDUINO_BMI270_BMM150_H_
#define TINYML_EMULATOR_ARDUINO_BMI270_BMM150_H_

#include "imu_replay.h"

#endif  // TINYML_EMULATOR_ARDUINO_BMI270_BMM150_H_
