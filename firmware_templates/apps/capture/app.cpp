// Capture app on the board: the sensor glue. It reads the IMU at the profile's rate and the
// PDM microphone at 16 kHz, with the same Arduino APIs as the gesture and kws apps, and hands
// the samples to CaptureSession (plain C++), which frames them for the host.
#include "app.h"

#include <Arduino.h>
#include <stdio.h>

#include "capture_config.h"
#include "capture_session.h"

#if TINYML_CAPTURE_IMU
#if defined(TINYML_IMU_LSM9DS1)
#include <Arduino_LSM9DS1.h>
#elif defined(TINYML_IMU_BMI270_BMM150)
#include <Arduino_BMI270_BMM150.h>
#elif defined(TINYML_IMU_LSM6DSOX)
#include <Arduino_LSM6DSOX.h>
#else
#error "the capture app reads the LSM9DS1, BMI270_BMM150 or LSM6DSOX IMU"
#endif
#endif
#if TINYML_CAPTURE_MICROPHONE
#include <PDM.h>
#endif

namespace {

tinyml::CaptureSession session(tinyml::kImuRateHz, TINYML_CAPTURE_MICROPHONE != 0);
uint32_t seen_takes = 0;

#if TINYML_CAPTURE_IMU
bool imu_ready = false;
float sample[6] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};

// One streamed sample per IMU sample: the sensor's own clock paces the take. (A timer of the
// board's beside it drifts against the sensor's, and then takes a sample twice or skips one.)
// The IMU library queues samples (the LSM9DS1's FIFO holds 32), so a slow serial write loses
// nothing unless it outlasts the queue.
void capture_imu(tinyml::ProtocolServer& server) {
  while (IMU.accelerationAvailable() && IMU.gyroscopeAvailable()) {
    IMU.readAcceleration(sample[0], sample[1], sample[2]);
    IMU.readGyroscope(sample[3], sample[4], sample[5]);
    session.push_imu(server, sample);
  }
}

// At a take's start: what the IMU queued before it belongs to no take.
void drop_queued_imu_samples() {
  while (IMU.accelerationAvailable()) IMU.readAcceleration(sample[0], sample[1], sample[2]);
  while (IMU.gyroscopeAvailable()) IMU.readGyroscope(sample[3], sample[4], sample[5]);
}
#endif

#if TINYML_CAPTURE_MICROPHONE
// Half a second of audio between the PDM interrupt and the loop.
constexpr uint32_t kRingSamples = 8192;
int16_t ring[kRingSamples];
volatile uint32_t samples_written = 0;  // total, wraps after ~3 days at 16 kHz (unsigned math)
uint32_t samples_read = 0;
bool microphone_ready = false;

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

void capture_pcm(tinyml::ProtocolServer& server) {
  const uint32_t written = samples_written;
  if (written - samples_read > kRingSamples) {
    // The loop fell behind and the ring wrapped: those samples are gone, and the host is told.
    session.lose(server, written - samples_read - kRingSamples);
    samples_read = written - kRingSamples;
  }
  while (samples_read != written) {
    const uint32_t start = samples_read % kRingSamples;
    uint32_t count = written - samples_read;
    if (count > kRingSamples - start) count = kRingSamples - start;
    session.push_pcm(server, ring + start, count);
    samples_read += count;
  }
}
#endif

}  // namespace

void app_setup(tinyml::ProtocolServer& server, tinyml::ModelRunner& runner) {
  (void)runner;
  server.set_request_handler(&session);
#if TINYML_CAPTURE_IMU
  imu_ready = IMU.begin();
  if (!imu_ready) server.print_line("error: the IMU did not start; check the board type (Sense or Sense Rev2)");
#endif
#if TINYML_CAPTURE_MICROPHONE
  PDM.onReceive(on_pdm_data);
  microphone_ready = PDM.begin(1, tinyml::kPcmSampleRateHz);
  if (!microphone_ready) server.print_line("error: the PDM microphone did not start");
#endif
  server.print_line("tinyml capture firmware: record with `tinyml capture --port PORT --label NAME`");
}

void app_loop(tinyml::ProtocolServer& server, tinyml::ModelRunner& runner) {
  (void)runner;
  session.check(server);
  const bool new_take = session.takes() != seen_takes;
  seen_takes = session.takes();
#if TINYML_CAPTURE_IMU
  if (new_take && imu_ready) drop_queued_imu_samples();
  if (imu_ready && session.sensor() == tinyml::kSensorImu) capture_imu(server);
#endif
#if TINYML_CAPTURE_MICROPHONE
  if (new_take) samples_read = samples_written;
  if (microphone_ready && session.sensor() == tinyml::kSensorMicrophone) capture_pcm(server);
#endif
  (void)new_take;
}
