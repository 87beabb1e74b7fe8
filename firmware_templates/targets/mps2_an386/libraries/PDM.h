// Stand-in for the mbed core's PDM library on the emulated board: the microphone replays a
// recording that the host gives (`--audio FILE`, 16 kHz mono PCM16). As the real library does
// from the PDM interrupt, a timer interrupt delivers a 512-byte buffer (256 samples, 16 ms of
// board time) and calls the onReceive() callback. As in the mbed PDM library, a buffer not read
// completely when the next one is due stops the microphone.
#ifndef TINYML_EMULATOR_PDM_H_
#define TINYML_EMULATOR_PDM_H_

#include <stddef.h>
#include <stdint.h>

class PDMClass {
 public:
  // 1 when the recording is there and channels/rate are 1 and 16000; 0 (with a line) otherwise.
  int begin(int channels, int sample_rate);
  void end();
  // Bytes of the last buffer not read yet.
  int available();
  // Copies up to `size` bytes of the last buffer; returns how many.
  int read(void* buffer, size_t size);
  void onReceive(void (*callback)(void)) { callback_ = callback; }

  // The timer interrupt: the next buffer of the recording, or the end.
  void deliver();

 private:
  static constexpr size_t kBufferBytes = 512;  // the mbed PDM library's default buffer
  int file_ = -1;
  void (*callback_)(void) = nullptr;
  uint8_t buffer_[kBufferBytes];
  volatile size_t filled_ = 0;
  volatile size_t taken_ = 0;
};

extern PDMClass PDM;

#endif  // TINYML_EMULATOR_PDM_H_
