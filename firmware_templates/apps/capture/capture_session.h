// The capture app's protocol side: CAPTURE_START / STATUS / STOP, and the SAMPLES frames
// (see tinyml/firmware/protocol.py). Plain C++ (no Arduino): the host tests compile it and
// decode its frames with the Python protocol; the sensor glue in app.cpp only pushes samples.
#ifndef TINYML_CAPTURE_SESSION_H_
#define TINYML_CAPTURE_SESSION_H_

#include <stddef.h>
#include <stdint.h>

#include "protocol_server.h"
#include "tinyml_protocol.h"

namespace tinyml {

class CaptureSession : public RequestHandler {
 public:
  // `imu_rate_hz` is 0 on a board without an IMU; the microphone always runs at kPcmSampleRateHz.
  CaptureSession(float imu_rate_hz, bool has_microphone);

  bool on_request(ProtocolServer& server, uint8_t type, uint8_t seq, const uint8_t* payload, size_t len) override;

  // kSensorImu, kSensorMicrophone, or 0 when no take runs.
  uint8_t sensor() const { return sensor_; }
  // Counts CAPTURE_START requests: the sensor glue restarts its clock or ring when it changes.
  uint32_t takes() const { return takes_; }
  // Ends the take when the host has gone (the server fell back to human mode).
  void check(ProtocolServer& server);

  // One IMU sample: ax, ay, az in g, then gx, gy, gz in degrees per second.
  void push_imu(ProtocolServer& server, const float* sample);
  void push_pcm(ProtocolServer& server, const int16_t* samples, size_t count);
  // Samples the sensor produced that the device could not keep: the indices skip them.
  void lose(ProtocolServer& server, uint32_t count);

 private:
  void append(ProtocolServer& server, const uint8_t* sample);
  void flush(ProtocolServer& server);
  void reply_status(ProtocolServer& server, uint8_t type, uint8_t seq);

  float imu_rate_hz_;
  bool has_microphone_;
  uint8_t sensor_;
  size_t sample_bytes_;
  size_t per_frame_;
  uint32_t takes_;
  uint32_t counted_;      // samples since CAPTURE_START: sent, waiting in frame_, or lost
  uint32_t lost_;
  uint32_t frame_first_;  // index of the first sample waiting in frame_
  size_t pending_;        // samples waiting in frame_
  uint8_t frame_seq_;
  uint8_t frame_[kMaxPayloadBytes];
};

}  // namespace tinyml

#endif  // TINYML_CAPTURE_SESSION_H_
