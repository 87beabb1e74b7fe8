// The capture app's CaptureSession on the host, behind the real protocol server: the test
// writes the host's requests into files, this program feeds them in and pushes known
// samples between them, and the test decodes every byte it wrote with the Python protocol.
//
// usage: capture_main REQUESTS_1 REQUESTS_2 REQUESTS_3 OUTPUT
//   REQUESTS_1 (HELLO, INFO, CAPTURE_START imu), then 1000 IMU samples with 37 lost after
//   the 500th; REQUESTS_2 (CAPTURE_STATUS, CAPTURE_STOP, CAPTURE_START microphone), then
//   5000 PCM samples in chunks of 100; REQUESTS_3 (CAPTURE_STOP, CAPTURE_START of a sensor
//   this board lacks).
#include <stdio.h>
#include <stdlib.h>

#include "capture_session.h"
#include "no_model_runner.h"
#include "protocol_server.h"

namespace {

class FileTransport : public tinyml::Transport {
 public:
  explicit FileTransport(FILE* out) : out_(out), in_(nullptr) {}
  void feed(const char* path) { in_ = fopen(path, "rb"); }
  int read() override {
    if (in_ == nullptr) return -1;
    const int c = fgetc(in_);
    if (c == EOF) {
      fclose(in_);
      in_ = nullptr;
      return -1;
    }
    return c;
  }
  void write(const uint8_t* data, size_t len) override { fwrite(data, 1, len, out_); }
  uint32_t micros() override { return now_ += 100; }
  bool busy() const { return in_ != nullptr; }

 private:
  FILE* out_;
  FILE* in_;
  uint32_t now_ = 0;
};

void serve(FileTransport& transport, tinyml::ProtocolServer& server, const char* requests) {
  transport.feed(requests);
  while (transport.busy()) server.poll();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  FILE* out = fopen(argv[4], "wb");
  if (out == nullptr) return 2;
  tinyml::DeviceInfo info = {};
  info.firmware_version = "host-test";
  info.board_id = "host";
  info.model_hash = "";
  info.rx_buffer_bytes = 256;
  info.app = "capture";
  static tinyml::NoModelRunner model;
  static FileTransport transport(out);
  static tinyml::ProtocolServer server(transport, model, info);
  // An IMU at 119 Hz and a microphone, as on the Nano 33 BLE Sense.
  static tinyml::CaptureSession session(119.0f, true);
  server.set_request_handler(&session);

  serve(transport, server, argv[1]);
  for (int i = 0; i < 1000; ++i) {
    if (i == 500) session.lose(server, 37);
    float sample[6];
    for (int c = 0; c < 6; ++c) sample[c] = static_cast<float>(i) * 0.001f + (static_cast<float>(c) - 2.5f);
    session.push_imu(server, sample);
  }
  serve(transport, server, argv[2]);
  int16_t chunk[100];
  for (int i = 0; i < 5000; i += 100) {
    for (int j = 0; j < 100; ++j) chunk[j] = static_cast<int16_t>((i + j) * 13 - 32000);
    session.push_pcm(server, chunk, 100);
  }
  serve(transport, server, argv[3]);
  fclose(out);
  return 0;
}
