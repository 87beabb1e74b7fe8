#include "logmel.h"

#include <math.h>

#include "input_quantization.h"

namespace tinyml {

namespace {

size_t reverse_bits(size_t value, size_t bits) {
  size_t out = 0;
  for (size_t i = 0; i < bits; ++i) {
    out = (out << 1) | (value & 1u);
    value >>= 1;
  }
  return out;
}

}  // namespace

void LogMelFrontEnd::fft() {
  using logmel::kFftSize;
  for (size_t i = 0; i < kFftSize; ++i) {
    const size_t j = reverse_bits(i, logmel::kFftLog2);
    if (j > i) {
      const float tr = re_[i];
      re_[i] = re_[j];
      re_[j] = tr;
      const float ti = im_[i];
      im_[i] = im_[j];
      im_[j] = ti;
    }
  }
  for (size_t size = 2; size <= kFftSize; size <<= 1) {
    const size_t half = size / 2;
    const size_t step = kFftSize / size;
    for (size_t start = 0; start < kFftSize; start += size) {
      for (size_t k = 0; k < half; ++k) {
        // Twiddle exp(-2 pi i k / size), from the rendered tables.
        const float c = logmel::kFftCos[k * step];
        const float s = logmel::kFftSin[k * step];
        const size_t a = start + k;
        const size_t b = a + half;
        const float tr = re_[b] * c + im_[b] * s;
        const float ti = im_[b] * c - re_[b] * s;
        re_[b] = re_[a] - tr;
        im_[b] = im_[a] - ti;
        re_[a] += tr;
        im_[a] += ti;
      }
    }
  }
}

void LogMelFrontEnd::compute_frame(const int16_t* samples, float* out) {
  for (size_t i = 0; i < logmel::kFftSize; ++i) {
    re_[i] = i < logmel::kWindowSamples ? (static_cast<float>(samples[i]) / 32768.0f) * logmel::kHannWindow[i] : 0.0f;
    im_[i] = 0.0f;
  }
  fft();
  // The power spectrum overwrites re_ (bins 0 .. kFftSize / 2).
  for (size_t k = 0; k < logmel::kSpectrumBins; ++k) re_[k] = re_[k] * re_[k] + im_[k] * im_[k];
  size_t weight = 0;
  for (size_t m = 0; m < logmel::kMelBins; ++m) {
    float energy = 0.0f;
    for (size_t k = 0; k < logmel::kMelCount[m]; ++k) energy += re_[logmel::kMelStart[m] + k] * logmel::kMelWeights[weight++];
    out[m] = logf(energy + logmel::kLogFloor);
  }
}

void FeatureWindow::reset() {
  for (size_t i = 0; i < logmel::kFrameCount * logmel::kMelBins; ++i) frames_[i] = 0.0f;
  oldest_ = 0;
  filled_ = 0;
}

void FeatureWindow::push_frame(const float* frame) {
  float* slot = &frames_[oldest_ * logmel::kMelBins];
  for (size_t m = 0; m < logmel::kMelBins; ++m) slot[m] = frame[m];
  oldest_ = (oldest_ + 1) % logmel::kFrameCount;
  if (filled_ < logmel::kFrameCount) ++filled_;
}

void FeatureWindow::copy_window(float* out) const {
  for (size_t f = 0; f < logmel::kFrameCount; ++f) {
    const float* slot = &frames_[((oldest_ + f) % logmel::kFrameCount) * logmel::kMelBins];
    for (size_t m = 0; m < logmel::kMelBins; ++m) out[f * logmel::kMelBins + m] = slot[m];
  }
}

void FeatureWindow::quantize_window(int8_t* out, float scale, int32_t zero_point) const {
  for (size_t f = 0; f < logmel::kFrameCount; ++f) {
    const float* slot = &frames_[((oldest_ + f) % logmel::kFrameCount) * logmel::kMelBins];
    for (size_t m = 0; m < logmel::kMelBins; ++m) out[f * logmel::kMelBins + m] = quantize_input_value(slot[m], scale, zero_point);
  }
}

}  // namespace tinyml
