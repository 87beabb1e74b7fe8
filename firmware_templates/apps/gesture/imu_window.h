// IMU windowing on the board: the C++ twin of tinyml.features.imu.ImuWindowSpec.
// Plain C++ (no Arduino, no TFLM): the host tests compile it and compare with numpy bit for bit.
#ifndef TINYML_IMU_WINDOW_H_
#define TINYML_IMU_WINDOW_H_

#include <stddef.h>
#include <stdint.h>

#include "imu_features.h"

namespace tinyml {

// One channel's raw reading (g or dps) -> the model's float32 value.
float normalise_imu(float raw, size_t channel);

// The last kWindowSamples normalised samples, in a ring. push() says when a new window is
// ready: first when the ring is full, then every kStrideSamples samples, exactly where the
// host's windows start (0, stride, 2 * stride, ...) on the same recording.
class ImuWindow {
 public:
  ImuWindow() { reset(); }

  void reset();

  // `raw` holds kChannels readings: ax, ay, az in g, then gx, gy, gz in dps.
  bool push(const float* raw);

  // The window, oldest sample first, as kWindowSamples * kChannels values.
  void copy_window(float* out) const;
  void quantize_window(int8_t* out, float scale, int32_t zero_point) const;

 private:
  float values_[imu::kWindowSamples * imu::kChannels];
  size_t oldest_;       // ring index of the oldest sample
  size_t filled_;       // samples in the ring, up to kWindowSamples
  size_t since_ready_;  // samples pushed since the last ready window
};

}  // namespace tinyml

#endif  // TINYML_IMU_WINDOW_H_
