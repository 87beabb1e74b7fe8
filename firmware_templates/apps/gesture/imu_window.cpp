#include "imu_window.h"

#include <math.h>

#include "input_quantization.h"

namespace tinyml {

float normalise_imu(float raw, size_t channel) {
  const float full = imu::kFullScale[channel];
  float value = raw;
  if (value > full) value = full;
  if (value < -full) value = -full;
  // One float32 multiply, as numpy does: no fused operation can change the result.
  return value * imu::kInvScale[channel];
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
    for (size_t c = 0; c < imu::kChannels; ++c) out[i * imu::kChannels + c] = quantize_input_value(slot[c], scale, zero_point);
  }
}

}  // namespace tinyml
