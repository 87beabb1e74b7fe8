// The emulated board's IMU: it replays a recording that the host gives (`--imu FILE`), at the
// recording's sample rate on the board's clock (micros()), through the API that every IMU
// library of the supported boards shares (Arduino_LSM9DS1, Arduino_BMI270_BMM150,
// Arduino_LSM6DSOX): a global `IMU`, acceleration in g, angular rate in degrees per second.
// As on the LSM9DS1 in the FIFO mode its Arduino library sets, samples queue up as they fall
// due (32 at most; a reader later than that loses the oldest), and each read takes the oldest
// queued one: a reader that keeps up gets every sample of the recording once, in order.
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
  static constexpr int32_t kFifoSamples = 32;
  // How many samples have fallen due since begin() (at most the recording's length).
  int32_t due_samples();
  // Samples queued for the reader whose next sample is `next` (moved past overwritten ones).
  int32_t queued(int32_t& next);
  // Loads the reader's next sample into frame_ and moves it on; false when none is queued.
  bool take(int32_t& next);
  bool load(int32_t sample);

  int file_ = -1;
  float sample_rate_hz_ = 0.0f;
  int32_t samples_ = 0;
  uint32_t last_us_ = 0;
  uint64_t elapsed_us_ = 0;  // since begin(), past micros()'s 32-bit wrap
  int32_t loaded_ = -1;      // the sample in frame_
  int32_t acceleration_next_ = 0;  // each reader's next sample: their queues are separate
  int32_t gyroscope_next_ = 0;
  bool ended_ = false;
  float frame_[6] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
};

extern ImuReplay IMU;

#endif  // TINYML_EMULATOR_IMU_REPLAY_H_
