#include "recognizer.h"

namespace tinyml {

Recognizer::Recognizer(size_t label_count, size_t silence_label, uint32_t average_window_ms, uint8_t detection_threshold,
                       uint32_t suppression_ms, size_t minimum_count)
    : label_count_(label_count < kRecognizerMaxLabels ? label_count : kRecognizerMaxLabels),
      silence_label_(silence_label),
      average_window_ms_(average_window_ms),
      detection_threshold_(detection_threshold),
      suppression_ms_(suppression_ms),
      minimum_count_(minimum_count),
      first_(0),
      count_(0),
      previous_top_(silence_label),
      previous_time_ms_(0),
      reported_once_(false) {}

bool Recognizer::process(const int8_t* scores, uint32_t now_ms, Detection* out) {
  if (count_ > 0) {
    const Result& newest = results_[(first_ + count_ - 1) % kRecognizerMaxResults];
    if (static_cast<int32_t>(now_ms - newest.time_ms) < 0) return false;
  }
  // Append, dropping the oldest when the ring is full, then drop results older than the window.
  if (count_ == kRecognizerMaxResults) {
    first_ = (first_ + 1) % kRecognizerMaxResults;
    --count_;
  }
  Result& slot = results_[(first_ + count_) % kRecognizerMaxResults];
  slot.time_ms = now_ms;
  for (size_t i = 0; i < label_count_; ++i) slot.scores[i] = static_cast<uint8_t>(static_cast<int32_t>(scores[i]) + 128);
  ++count_;
  while (count_ > 1 && now_ms - results_[first_].time_ms > average_window_ms_) {
    first_ = (first_ + 1) % kRecognizerMaxResults;
    --count_;
  }

  uint32_t sums[kRecognizerMaxLabels] = {0};
  for (size_t r = 0; r < count_; ++r) {
    const Result& result = results_[(first_ + r) % kRecognizerMaxResults];
    for (size_t i = 0; i < label_count_; ++i) sums[i] += result.scores[i];
  }
  size_t top = 0;
  for (size_t i = 1; i < label_count_; ++i) {
    if (sums[i] > sums[top]) top = i;
  }
  out->label = top;
  out->score = static_cast<uint8_t>(sums[top] / count_);
  out->is_new = false;
  if (count_ < minimum_count_) return true;

  // previous_top_ is the label last heard with confidence; silence clears it, so the same
  // keyword said again after a pause is reported again, but a held keyword only once.
  if (top == silence_label_) {
    previous_top_ = silence_label_;
    return true;
  }
  if (out->score <= detection_threshold_) return true;
  const bool suppressed = reported_once_ && now_ms - previous_time_ms_ < suppression_ms_;
  if (top != previous_top_ && !suppressed) {
    out->is_new = true;
    previous_time_ms_ = now_ms;
    reported_once_ = true;
  }
  previous_top_ = top;
  return true;
}

}  // namespace tinyml
