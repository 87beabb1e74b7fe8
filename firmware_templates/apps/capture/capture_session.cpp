#include "capture_session.h"

#include <string.h>

namespace tinyml {
namespace {

void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    p[i] = static_cast<uint8_t>(v >> (8 * i));
  }
}

}  // namespace

CaptureSession::CaptureSession(float imu_rate_hz, bool has_microphone)
    : imu_rate_hz_(imu_rate_hz),
      has_microphone_(has_microphone),
      sensor_(0),
      sample_bytes_(0),
      per_frame_(0),
      takes_(0),
      counted_(0),
      lost_(0),
      frame_first_(0),
      pending_(0),
      frame_seq_(0) {}

bool CaptureSession::on_request(ProtocolServer& server, uint8_t type, uint8_t seq, const uint8_t* payload, size_t len) {
  if (type == kMsgCaptureStart) {
    if (len != 1) {
      server.send_error(seq, kStatusBadLength, type);
      return true;
    }
    const uint8_t wanted = payload[0];
    float rate = 0.0f;
    uint8_t reply[8];
    if (wanted == kSensorImu && imu_rate_hz_ > 0.0f) {
      rate = imu_rate_hz_;
      reply[1] = kImuDtype;
      reply[2] = kImuChannels;
      reply[3] = kImuSamplesPerFrame;
      sample_bytes_ = kImuChannels * 4;
      per_frame_ = kImuSamplesPerFrame;
    } else if (wanted == kSensorMicrophone && has_microphone_) {
      rate = static_cast<float>(kPcmSampleRateHz);
      reply[1] = kMicrophoneDtype;
      reply[2] = kMicrophoneChannels;
      reply[3] = kMicrophoneSamplesPerFrame;
      sample_bytes_ = kMicrophoneChannels * 2;
      per_frame_ = kMicrophoneSamplesPerFrame;
    } else {
      server.send_error(seq, kStatusNoSensor, type);
      return true;
    }
    reply[0] = wanted;
    uint32_t rate_bits;
    memcpy(&rate_bits, &rate, sizeof(rate_bits));
    put_u32(reply + 4, rate_bits);
    sensor_ = wanted;
    ++takes_;
    counted_ = 0;
    lost_ = 0;
    frame_first_ = 0;
    pending_ = 0;
    server.send_frame(type, seq, reply, sizeof(reply));
    return true;
  }
  if (type == kMsgCaptureStatus) {
    reply_status(server, type, seq);
    return true;
  }
  if (type == kMsgCaptureStop) {
    if (sensor_ != 0) {
      flush(server);  // the take's last samples go out before the reply that ends it
    }
    reply_status(server, type, seq);
    sensor_ = 0;
    return true;
  }
  return false;
}

void CaptureSession::reply_status(ProtocolServer& server, uint8_t type, uint8_t seq) {
  uint8_t reply[9];
  reply[0] = sensor_;
  put_u32(reply + 1, counted_);
  put_u32(reply + 5, lost_);
  server.send_frame(type, seq, reply, sizeof(reply));
}

void CaptureSession::check(ProtocolServer& server) {
  if (sensor_ != 0 && !server.binary_mode()) {
    sensor_ = 0;
    pending_ = 0;
  }
}

void CaptureSession::push_imu(ProtocolServer& server, const float* sample) {
  if (sensor_ != kSensorImu) {
    return;
  }
  uint8_t bytes[kImuChannels * 4];
  for (size_t c = 0; c < kImuChannels; ++c) {
    uint32_t bits;
    memcpy(&bits, &sample[c], sizeof(bits));
    put_u32(bytes + 4 * c, bits);
  }
  append(server, bytes);
}

void CaptureSession::push_pcm(ProtocolServer& server, const int16_t* samples, size_t count) {
  if (sensor_ != kSensorMicrophone) {
    return;
  }
  for (size_t i = 0; i < count; ++i) {
    const uint16_t bits = static_cast<uint16_t>(samples[i]);
    const uint8_t bytes[2] = {static_cast<uint8_t>(bits), static_cast<uint8_t>(bits >> 8)};
    append(server, bytes);
  }
}

void CaptureSession::lose(ProtocolServer& server, uint32_t count) {
  if (sensor_ == 0 || count == 0) {
    return;
  }
  flush(server);  // frames hold consecutive samples only: the gap starts a new frame
  counted_ += count;
  lost_ += count;
  frame_first_ = counted_;
}

void CaptureSession::append(ProtocolServer& server, const uint8_t* sample) {
  memcpy(frame_ + kSamplesHeaderBytes + pending_ * sample_bytes_, sample, sample_bytes_);
  ++pending_;
  ++counted_;
  if (pending_ == per_frame_) {
    flush(server);
  }
}

void CaptureSession::flush(ProtocolServer& server) {
  if (pending_ == 0) {
    return;
  }
  put_u32(frame_, frame_first_);
  frame_[4] = static_cast<uint8_t>(pending_);
  server.send_frame(kMsgSamples, frame_seq_++, frame_, kSamplesHeaderBytes + pending_ * sample_bytes_);
  frame_first_ += static_cast<uint32_t>(pending_);
  pending_ = 0;
}

}  // namespace tinyml
