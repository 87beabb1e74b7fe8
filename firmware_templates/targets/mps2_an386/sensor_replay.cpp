// The IMU and microphone of the emulated board (imu_replay.h, PDM.h): recordings that the host
// prepares in QEMU's working directory, read through semihosting as board time passes.
#include <Arduino.h>
#include <PDM.h>
#include <stdio.h>

#include "emulator.h"
#include "imu_replay.h"
#include "mps2_an386.h"
#include "semihosting.h"

namespace {

// The files the host writes (tinyml's emulator runner uses the same names and layouts).
// IMU: a 16-byte header ("TMLIMU1\0", float32 sample rate in Hz, uint32 channel count = 6),
// then float32 frames ax, ay, az (g), gx, gy, gz (deg/s), little-endian.
constexpr char kImuFile[] = "tinyml-imu.bin";
constexpr char kImuMagic[8] = {'T', 'M', 'L', 'I', 'M', 'U', '1', '\0'};
constexpr uint32_t kImuChannels = 6;
constexpr size_t kImuHeaderBytes = 16;
constexpr size_t kImuFrameBytes = kImuChannels * sizeof(float);
// Audio: raw PCM16 mono at 16 kHz, little-endian, no header.
constexpr char kAudioFile[] = "tinyml-audio.s16";
constexpr int kAudioRateHz = 16000;

}  // namespace

ImuReplay IMU;
PDMClass PDM;

int ImuReplay::begin() {
  end();
  file_ = semihosting_open(kImuFile);
  if (file_ < 0) {
    emulator_notice("no IMU recording, so IMU.begin() fails: give one to the emulator (--imu FILE)", true);
    return 0;
  }
  uint8_t header[kImuHeaderBytes] = {};
  uint32_t channels = 0;
  const long length = semihosting_length(file_);
  if (semihosting_read(file_, header, sizeof(header)) == sizeof(header)) {
    memcpy(&sample_rate_hz_, header + 8, sizeof(sample_rate_hz_));
    memcpy(&channels, header + 12, sizeof(channels));
  }
  if (memcmp(header, kImuMagic, sizeof(kImuMagic)) != 0 || channels != kImuChannels || !(sample_rate_hz_ > 0.0f) ||
      length < static_cast<long>(kImuHeaderBytes)) {
    emulator_notice("the IMU recording is not one the emulator wrote, so IMU.begin() fails", true);
    end();
    return 0;
  }
  samples_ = static_cast<int32_t>((length - kImuHeaderBytes) / kImuFrameBytes);
  last_us_ = micros();
  return 1;
}

void ImuReplay::end() {
  if (file_ >= 0) semihosting_close(file_);
  file_ = -1;
  elapsed_us_ = 0;
  loaded_ = -1;
  acceleration_next_ = 0;
  gyroscope_next_ = 0;
  ended_ = false;
}

int32_t ImuReplay::due_samples() {
  if (file_ < 0) return 0;
  const uint32_t now = micros();
  elapsed_us_ += now - last_us_;
  last_us_ = now;
  // Sample n falls due n sample periods after begin(): sample 0 at once.
  const uint64_t due = static_cast<uint64_t>(static_cast<double>(elapsed_us_) * sample_rate_hz_ / 1e6) + 1;
  if (due > static_cast<uint64_t>(samples_)) {
    if (!ended_) {
      ended_ = true;
      char line[80];
      snprintf(line, sizeof(line), "the IMU recording ended after %ld samples", static_cast<long>(samples_));
      emulator_notice(line, false);
    }
    return samples_;
  }
  return static_cast<int32_t>(due);
}

int32_t ImuReplay::queued(int32_t& next) {
  const int32_t due = due_samples();
  if (due - next > kFifoSamples) next = due - kFifoSamples;  // the FIFO overwrote the oldest
  return due - next;
}

bool ImuReplay::take(int32_t& next) {
  if (queued(next) <= 0 || !load(next)) return false;
  ++next;
  return true;
}

bool ImuReplay::load(int32_t sample) {
  if (sample == loaded_) return true;
  if (!semihosting_seek(file_, kImuHeaderBytes + static_cast<size_t>(sample) * kImuFrameBytes) ||
      semihosting_read(file_, frame_, kImuFrameBytes) != kImuFrameBytes) {
    return false;
  }
  loaded_ = sample;
  return true;
}

int ImuReplay::accelerationAvailable() { return queued(acceleration_next_); }

int ImuReplay::readAcceleration(float& x, float& y, float& z) {
  if (!take(acceleration_next_)) return 0;
  x = frame_[0];
  y = frame_[1];
  z = frame_[2];
  return 1;
}

int ImuReplay::gyroscopeAvailable() { return queued(gyroscope_next_); }

int ImuReplay::readGyroscope(float& x, float& y, float& z) {
  if (!take(gyroscope_next_)) return 0;
  x = frame_[3];
  y = frame_[4];
  z = frame_[5];
  return 1;
}

int PDMClass::begin(int channels, int sample_rate) {
  end();
  if (channels != 1 || sample_rate != kAudioRateHz) {
    emulator_notice("the microphone replays 16 kHz mono only, so PDM.begin() fails", true);
    return 0;
  }
  file_ = semihosting_open(kAudioFile);
  if (file_ < 0) {
    emulator_notice("no audio recording, so PDM.begin() fails: give one to the emulator (--audio FILE)", true);
    return 0;
  }
  // One buffer per interrupt: 512 bytes = 256 samples = 16 ms = 400,000 ticks (the timer's
  // period is RELOAD + 1).
  const uint64_t ticks = static_cast<uint64_t>(MPS2_SYSCLK_HZ) * (kBufferBytes / sizeof(int16_t)) / kAudioRateHz;
  TIMER0_RELOAD = static_cast<uint32_t>(ticks) - 1;
  TIMER0_VALUE = TIMER0_RELOAD;
  TIMER0_CTRL = TIMER_CTRL_ENABLE | TIMER_CTRL_INTEN;
  nvic_enable(TIMER0_IRQN, PRIORITY_SENSOR);
  return 1;
}

void PDMClass::end() {
  TIMER0_CTRL = 0;
  if (file_ >= 0) semihosting_close(file_);
  file_ = -1;
  filled_ = 0;
  taken_ = 0;
}

int PDMClass::available() {
  const uint32_t primask = irq_save();
  const int left = static_cast<int>(filled_ - taken_);
  irq_restore(primask);
  return left;
}

int PDMClass::read(void* buffer, size_t size) {
  const uint32_t primask = irq_save();
  const size_t left = filled_ - taken_;
  const size_t count = size < left ? size : left;
  memcpy(buffer, buffer_ + taken_, count);
  taken_ += count;
  irq_restore(primask);
  return static_cast<int>(count);
}

void PDMClass::deliver() {
  if (filled_ != taken_) {
    TIMER0_CTRL = 0;
    emulator_notice("the sketch did not read the last microphone buffer in time, so the microphone stopped (as the mbed PDM library does)", false);
    return;
  }
  const size_t got = semihosting_read(file_, buffer_, kBufferBytes) & ~static_cast<size_t>(1);
  filled_ = got;
  taken_ = 0;
  if (got < kBufferBytes) {
    TIMER0_CTRL = 0;
    emulator_notice("the audio recording ended", false);
  }
  if (got > 0 && callback_ != nullptr) callback_();
}

extern "C" void TIMER0_Handler(void) {
  TIMER0_INTCLEAR = 1;
  PDM.deliver();
}
