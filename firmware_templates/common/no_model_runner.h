// The model seam for firmware that runs no model (an app whose manifest says needs_model =
// false, such as capture): no input, no output, every invoke fails. The protocol server still
// answers HELLO and INFO, so the host learns which app runs; INFO shows no model.
#ifndef TINYML_NO_MODEL_RUNNER_H_
#define TINYML_NO_MODEL_RUNNER_H_

#include "model_runner.h"

namespace tinyml {

class NoModelRunner : public ModelRunner {
 public:
  int8_t* input() override { return nullptr; }
  size_t input_bytes() const override { return 0; }
  const int8_t* output() const override { return nullptr; }
  size_t output_bytes() const override { return 0; }
  bool invoke() override { return false; }
  size_t arena_used_bytes() const override { return 0; }
};

}  // namespace tinyml

#endif  // TINYML_NO_MODEL_RUNNER_H_
