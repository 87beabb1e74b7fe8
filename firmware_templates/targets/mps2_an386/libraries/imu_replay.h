// The emulated board's IMU: it replays a recording that the host gives (`--imu FILE`), at the
// recording's sample rate on the board's clock (micros()), through the API that every IMU
// library of the supported boards shares (Arduino_LSM9DS1, Arduino_BMI270_BMM150,
// Arduino_LSM6DSOX): a global `IMU`, acceleration in g, angular rate in degrees per second.
// As on the sensor, a reading is "available" once per sample period, and a late reader gets
// the newest sample, not a queue of old ones.
#ifndef TINYML_EMULATOR_IMU_REPLAY_H_
#define TINYML_EMULATOR_IMU_REPLAY_H_

#include <stdint.h>

class ImuReplay {
 public:
  // 1 when the recording is there and valid; 0 (with a line saying why) otherwise.
  int begin();
  void end();
  int accelerationAvailable();
  int readAcceleration(float& x, float& y, float& z);
  float accelerationSampleRate() { return sample_rate_hz_; }
  int gyroscopeAvailable();
  int readGyroscope(float& x, float& y, float& z);
  float gyroscopeSampleRate() { return sample_rate_hz_; }

 private:
  // The sample due now, or -1 before the first one and after the recording's end.
  int32_t due_sample();
  bool load(int32_t sample);

  int file_ = -1;
  float sample_rate_hz_ = 0.0f;
  int32_t samples_ = 0;
  uint32_t last_us_ = 0;
  uint64_t elapsed_us_ = 0;  // since begin(), past micros()'s 32-bit wrap
  int32_t loaded_ = -1;      // the sample in frame_
  int32_t acceleration_read_ = -1;
  int32_t gyroscope_read_ = -1;
  bool ended_ = false;
  float frame_[6] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
};

extern ImuReplay IMU;

#endif  // TINYML_EMULATOR_IMU_REPLAY_H_
