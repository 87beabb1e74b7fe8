#include "imu_window.h"

#include <math.h>

namespace tinyml {

float normalise_imu(float raw, size_t channel) {
  const float full = imu::kFullScale[channel];
  float value = raw;
  if (value > full) value = full;
  if (value < -full) value = -full;
  // One float32 multiply, as numpy does: no fused operation can change the result.
  return value * imu::kInvScale[channel];
}

int8_t quantize_value(float value, float scale, int32_t zero_point) {
  // tinyml.quantize.quantize_input's formula, step for step: a double division (numpy divides
  // the float32 values in float64 too), round half away from zero as sign * floor(|x| + 0.5)
  // (TFLite's std::round), then clip.
  const double scaled = static_cast<double>(value) / static_cast<double>(scale);
  const double magnitude = floor(fabs(scaled) + 0.5);
  double q = (scaled < 0.0 ? -magnitude : magnitude) + static_cast<double>(zero_point);
  if (q > 127.0) q = 127.0;
  if (q < -128.0) q = -128.0;
  return static_cast<int8_t>(q);
}

void ImuWindow::reset() {
  for (size_t i = 0; i < imu::kWindowSamples * imu::kChannels; ++i) values_[i] = 0.0f;
  oldest_ = 0;
  filled_ = 0;
  since_ready_ = 0;
}

bool ImuWindow::push(const float* raw) {
  float* slot = &values_[oldest_ * imu::kChannels];
  for (size_t c = 0; c < imu::kChannels; ++c) slot[c] = normalise_imu(raw[c], c);
  oldest_ = (oldest_ + 1) % imu::kWindowSamples;
  if (filled_ < imu::kWindowSamples) {
    ++filled_;
    return filled_ == imu::kWindowSamples;
  }
  if (++since_ready_ < imu::kStrideSamples) return false;
  since_ready_ = 0;
  return true;
}

void ImuWindow::copy_window(float* out) const {
  for (size_t i = 0; i < imu::kWindowSamples; ++i) {
    const float* slot = &values_[((oldest_ + i) % imu::kWindowSamples) * imu::kChannels];
    for (size_t c = 0; c < imu::kChannels; ++c) out[i * imu::kChannels + c] = slot[c];
  }
}

void ImuWindow::quantize_window(int8_t* out, float scale, int32_t zero_point) const {
  for (size_t i = 0; i < imu::kWindowSamples; ++i) {
    const float* slot = &values_[((oldest_ + i) % imu::kWindowSamples) * imu::kChannels];
    for (size_t c = 0; c < imu::kChannels; ++c) out[i * imu::kChannels + c] = quantize_value(slot[c], scale, zero_point);
  }
}

}  // namespace tinyml
