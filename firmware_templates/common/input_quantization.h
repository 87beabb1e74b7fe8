// The host's input quantization (tinyml.model.quantization.quantize_input), step for step, so that a
// feature the board computes becomes the very int8 byte the host would have sent.
// Plain C++: the lab apps use it, and the host tests compile it.
#ifndef TINYML_INPUT_QUANTIZATION_H_
#define TINYML_INPUT_QUANTIZATION_H_

#include <math.h>
#include <stdint.h>

namespace tinyml {

// round(value / scale) + zero_point, saturated to -128..127. A double division (numpy divides
// the float32 values in float64 too), ties away from zero as sign * floor(|x| + 0.5) (TFLite's
// std::round), then the clip.
inline int8_t quantize_input_value(float value, float scale, int32_t zero_point) {
  const double scaled = static_cast<double>(value) / static_cast<double>(scale);
  const double magnitude = floor(fabs(scaled) + 0.5);
  double q = (scaled < 0.0 ? -magnitude : magnitude) + static_cast<double>(zero_point);
  if (q > 127.0) q = 127.0;
  if (q < -128.0) q = -128.0;
  return static_cast<int8_t>(q);
}

}  // namespace tinyml

#endif  // TINYML_INPUT_QUANTIZATION_H_
