// Keyword spotting on the board: 16 kHz audio from the PDM microphone, a log-mel frame every
// hop, an inference every few frames over the last second, scores smoothed over time.
// The front end's numbers come from logmel_features.h, rendered from the LogMelSpec that
// made the training features.
#include "app.h"

#include <Arduino.h>
#include <PDM.h>
#include <stdio.h>

#include "app_config.h"
#include "logmel.h"
#include "recognizer.h"

namespace {

// Half a second of audio between the PDM interrupt and the loop.
constexpr size_t kRingSamples = 8192;
int16_t ring[kRingSamples];
volatile uint32_t samples_written = 0;  // total, wraps after ~3 days at 16 kHz (unsigned math)
uint32_t next_frame_start = 0;          // total sample index of the next frame
bool microphone_ready = false;
size_t frames_since_inference = 0;

tinyml::LogMelFrontEnd front_end;
tinyml::FeatureWindow features;
tinyml::Recognizer recognizer(tinyml::kAppLabelCount, tinyml::kSilenceLabel, tinyml::kAverageWindowMs, tinyml::kDetectionThreshold,
                              tinyml::kSuppressionMs, tinyml::kMinimumCount);
int16_t frame_samples[tinyml::logmel::kWindowSamples];
float frame[tinyml::logmel::kMelBins];

// PDM interrupt: copy what the microphone delivered into the ring.
void on_pdm_data() {
  int16_t buffer[256];
  int bytes = PDM.available();
  while (bytes > 0) {
    const int chunk = bytes < static_cast<int>(sizeof(buffer)) ? bytes : static_cast<int>(sizeof(buffer));
    PDM.read(buffer, chunk);
    uint32_t written = samples_written;
    for (int i = 0; i < chunk / 2; ++i) ring[(written + i) % kRingSamples] = buffer[i];
    samples_written = written + chunk / 2;
    bytes -= chunk;
  }
}

void recognise(tinyml::ProtocolServer& server, tinyml::ModelRunner& runner) {
  features.quantize_window(runner.input(), tinyml::kInputScale, tinyml::kInputZeroPoint);
  if (!runner.invoke()) {
    server.print_line("error: inference failed");
    return;
  }
  tinyml::Detection detection;
  if (!recognizer.process(runner.output(), millis(), &detection)) return;
  if (!detection.is_new) return;
  char line[64];
  snprintf(line, sizeof(line), "heard: %s (score %u)", tinyml::kAppLabels[detection.label], static_cast<unsigned>(detection.score));
  server.print_line(line);
}

}  // namespace

void app_setup(tinyml::ProtocolServer& server, tinyml::ModelRunner& runner) {
  (void)runner;
  PDM.onReceive(on_pdm_data);
  microphone_ready = PDM.begin(1, tinyml::logmel::kSampleRateHz);
  if (!microphone_ready) server.print_line("error: the PDM microphone did not start");
}

void app_loop(tinyml::ProtocolServer& server, tinyml::ModelRunner& runner) {
  if (!microphone_ready) return;
  const uint32_t written = samples_written;
  if (written - next_frame_start > kRingSamples - tinyml::logmel::kWindowSamples) {
    // The loop fell behind (validation held it, or inference is too slow): skip to fresh audio.
    next_frame_start = written - tinyml::logmel::kWindowSamples;
    features.reset();
    frames_since_inference = 0;
  }
  while (written - next_frame_start >= tinyml::logmel::kWindowSamples) {
    for (size_t i = 0; i < tinyml::logmel::kWindowSamples; ++i) frame_samples[i] = ring[(next_frame_start + i) % kRingSamples];
    next_frame_start += tinyml::logmel::kHopSamples;
    front_end.compute_frame(frame_samples, frame);
    features.push_frame(frame);
    if (!features.full() || ++frames_since_inference < tinyml::kInferenceEveryFrames) continue;
    frames_since_inference = 0;
    // In validation mode the host owns the input tensor: keep listening, do not classify.
    if (!server.binary_mode()) recognise(server, runner);
  }
}
