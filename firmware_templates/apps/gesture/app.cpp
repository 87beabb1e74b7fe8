// Gesture app on the board: read the IMU at the model's rate, keep the window, classify it.
// Every supported IMU library (LSM9DS1 on the Sense, BMI270 on the Sense Rev2, LSM6DSOX on the
// Nano RP2040 Connect) has the same global `IMU` and reports g and degrees per second.
// The numbers (rate, window, stride, scaling) come from imu_features.h, rendered from the
// same ImuWindowSpec that made the training windows.
#include "app.h"

#include <Arduino.h>
#include <stdio.h>

#if defined(TINYML_IMU_LSM9DS1)
#include <Arduino_LSM9DS1.h>
#elif defined(TINYML_IMU_BMI270_BMM150)
#include <Arduino_BMI270_BMM150.h>
#elif defined(TINYML_IMU_LSM6DSOX)
#include <Arduino_LSM6DSOX.h>
#else
#error "the gesture app needs an IMU: render it for a board whose profile has [sensors.imu]"
#endif

#include "app_config.h"
#include "imu_window.h"

namespace {

tinyml::ImuWindow window;
bool imu_ready = false;
uint32_t next_sample_us = 0;
// The latest reading; the IMU runs faster than the model's rate, so each tick takes the newest.
float latest[tinyml::imu::kChannels] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};

void read_latest() {
  if (IMU.accelerationAvailable()) IMU.readAcceleration(latest[0], latest[1], latest[2]);
  if (IMU.gyroscopeAvailable()) IMU.readGyroscope(latest[3], latest[4], latest[5]);
}

void classify(tinyml::ProtocolServer& server, tinyml::ModelRunner& runner) {
  // The input tensor's quantization, from app_config.h (rendered from the model).
  window.quantize_window(runner.input(), tinyml::kInputScale, tinyml::kInputZeroPoint);
  if (!runner.invoke()) {
    server.print_line("error: inference failed");
    return;
  }
  const int8_t* scores = runner.output();
  size_t best = 0;
  for (size_t i = 1; i < runner.output_bytes() && i < tinyml::kAppLabelCount; ++i) {
    if (scores[i] > scores[best]) best = i;
  }
  // Softmax output: int8 -128..127 is probability 0..1 (scale 1/256, zero point -128).
  const int percent = (static_cast<int>(scores[best]) + 128) * 100 / 256;
  char line[96];
  snprintf(line, sizeof(line), "exercise: %s (%d%%)", tinyml::kAppLabels[best], percent);
  server.print_line(line);
}

}  // namespace

void app_setup(tinyml::ProtocolServer& server, tinyml::ModelRunner& runner) {
  (void)runner;
  imu_ready = IMU.begin();
  if (!imu_ready) {
    server.print_line("error: the IMU did not start; check the board type (Sense or Sense Rev2)");
    return;
  }
  next_sample_us = micros();
}

void app_loop(tinyml::ProtocolServer& server, tinyml::ModelRunner& runner) {
  if (!imu_ready) return;
  read_latest();
  const uint32_t now = micros();
  if (static_cast<int32_t>(now - next_sample_us) < 0) return;
  next_sample_us += tinyml::imu::kSamplePeriodUs;
  // After a long stall (the host held the board in validation), restart the clock.
  if (static_cast<int32_t>(now - next_sample_us) > static_cast<int32_t>(tinyml::imu::kSamplePeriodUs * 4)) {
    next_sample_us = now + tinyml::imu::kSamplePeriodUs;
  }
  const bool ready = window.push(latest);
  // In validation mode the host owns the input tensor: keep sampling, do not classify.
  if (ready && !server.binary_mode()) classify(server, runner);
}
