// The model seam of the firmware: the protocol server runs inferences only through this
// interface. The firmware implements it with TFLM; the host tests with a plain C++ function.
#ifndef TINYML_MODEL_RUNNER_H_
#define TINYML_MODEL_RUNNER_H_

#include <stddef.h>
#include <stdint.h>

namespace tinyml {

class ModelRunner {
 public:
  virtual ~ModelRunner() {}
  // The raw bytes of input tensor 0; the protocol server writes received chunks here.
  virtual int8_t* input() = 0;
  virtual size_t input_bytes() const = 0;
  // The raw bytes of output tensor 0, valid after a successful invoke().
  virtual const int8_t* output() const = 0;
  virtual size_t output_bytes() const = 0;
  virtual bool invoke() = 0;
  virtual size_t arena_used_bytes() const = 0;
};

}  // namespace tinyml

#endif  // TINYML_MODEL_RUNNER_H_
