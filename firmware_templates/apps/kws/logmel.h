// The log-mel front end on the board: the C++ twin of tinyml.features.logmel.LogMelSpec.
// Plain C++ (no Arduino, no TFLM, no heap): the host tests compile it and compare with numpy.
#ifndef TINYML_LOGMEL_H_
#define TINYML_LOGMEL_H_

#include <stddef.h>
#include <stdint.h>

#include "logmel_features.h"

namespace tinyml {

// One frame: kWindowSamples of 16-bit PCM -> kMelBins log-mel values.
class LogMelFrontEnd {
 public:
  void compute_frame(const int16_t* samples, float* out);

 private:
  void fft();  // in place on re_/im_, radix 2, decimation in time
  float re_[logmel::kFftSize];
  float im_[logmel::kFftSize];
};

// The model's input: the last kFrameCount frames, oldest first, in a ring.
class FeatureWindow {
 public:
  FeatureWindow() { reset(); }
  void reset();
  void push_frame(const float* frame);
  bool full() const { return filled_ == logmel::kFrameCount; }
  // kFrameCount * kMelBins int8 values, quantized as the host does (tinyml.model.quantization.quantize_input).
  void quantize_window(int8_t* out, float scale, int32_t zero_point) const;
  void copy_window(float* out) const;

 private:
  float frames_[logmel::kFrameCount * logmel::kMelBins];
  size_t oldest_;
  size_t filled_;
};

}  // namespace tinyml

#endif  // TINYML_LOGMEL_H_
