// Score smoothing over time, as TFLM micro_speech's RecognizeCommands does: average each
// label's score over a time window, and report a keyword only when its average is high,
// enough results are in the window, it is not the keyword already being heard, and the last
// report is older than the suppression time. Unlike micro_speech, silence is never reported
// and a keyword held on is reported once, not again every suppression period.
// Plain C++ (no heap): the host tests compile and drive it.
#ifndef TINYML_RECOGNIZER_H_
#define TINYML_RECOGNIZER_H_

#include <stddef.h>
#include <stdint.h>

namespace tinyml {

constexpr size_t kRecognizerMaxLabels = 16;
constexpr size_t kRecognizerMaxResults = 32;

struct Detection {
  bool is_new;         // a new keyword was heard in this call
  size_t label;        // the top label of the averaged scores
  uint8_t score;       // its average score, 0..255
};

class Recognizer {
 public:
  // `silence_label`: the label that never counts as a detection.
  Recognizer(size_t label_count, size_t silence_label, uint32_t average_window_ms, uint8_t detection_threshold,
             uint32_t suppression_ms, size_t minimum_count);

  // One inference: int8 softmax scores (-128..127 for probability 0..1) at time `now_ms`.
  // Returns false when the results go back in time (the caller's clock is wrong).
  bool process(const int8_t* scores, uint32_t now_ms, Detection* out);

 private:
  struct Result {
    uint32_t time_ms;
    uint8_t scores[kRecognizerMaxLabels];
  };
  size_t label_count_;
  size_t silence_label_;
  uint32_t average_window_ms_;
  uint8_t detection_threshold_;
  uint32_t suppression_ms_;
  size_t minimum_count_;
  Result results_[kRecognizerMaxResults];
  size_t first_;  // ring index of the oldest result
  size_t count_;
  size_t previous_top_;
  uint32_t previous_time_ms_;
  bool reported_once_;
};

}  // namespace tinyml

#endif  // TINYML_RECOGNIZER_H_
