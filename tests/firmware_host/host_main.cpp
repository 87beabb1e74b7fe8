// The firmware's protocol server on the host: stdin/stdout are the serial port (the test
// connects them to the master side of a pty), and a test model computes a known function
// in place of TFLM, so that the Python host can check every output byte.
//
// usage: host_main RX_BUFFER_BYTES
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "protocol_server.h"

namespace {

constexpr size_t kInputBytes = 300;   // more than one INPUT chunk at any receive buffer
constexpr size_t kOutputBytes = 260;  // more than one INVOKE reply: OUTPUT requests follow

// output[j] = input[j % kInputBytes] + j (mod 256), as int8
class TestModel : public tinyml::ModelRunner {
 public:
  int8_t* input() override { return input_; }
  size_t input_bytes() const override { return kInputBytes; }
  const int8_t* output() const override { return output_; }
  size_t output_bytes() const override { return kOutputBytes; }
  bool invoke() override {
    for (size_t j = 0; j < kOutputBytes; ++j) {
      output_[j] = static_cast<int8_t>(static_cast<uint8_t>(input_[j % kInputBytes]) + j);
    }
    // The TFLM memory planner may reuse the input's arena bytes: imitate it, so that a
    // server that re-ran a retried INVOKE would answer wrongly.
    for (size_t i = 0; i < kInputBytes; ++i) {
      input_[i] = 0x55;
    }
    return true;
  }
  size_t arena_used_bytes() const override { return 1234; }

 private:
  int8_t input_[kInputBytes] = {};
  int8_t output_[kOutputBytes] = {};
};

class StdioTransport : public tinyml::Transport {
 public:
  int read() override {
    if (pos_ == len_) {
      const ssize_t n = ::read(0, buffer_, sizeof(buffer_));
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        exit(0);  // the port closed: the test is over
      }
      if (n <= 0) {
        return -1;
      }
      pos_ = 0;
      len_ = static_cast<size_t>(n);
    }
    return buffer_[pos_++];
  }
  void write(const uint8_t* data, size_t len) override {
    while (len > 0) {
      const ssize_t n = ::write(1, data, len);
      if (n > 0) {
        data += n;
        len -= static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        struct pollfd out = {1, POLLOUT, 0};
        poll(&out, 1, 10);
      } else {
        exit(0);
      }
    }
  }
  uint32_t micros() override {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<uint32_t>(now.tv_sec * 1000000ULL + now.tv_nsec / 1000);
  }
  bool pending() const { return pos_ < len_; }

 private:
  uint8_t buffer_[256];
  size_t pos_ = 0;
  size_t len_ = 0;
};

const char* const kLabels[] = {"zero", "one", "two"};

}  // namespace

int main(int argc, char** argv) {
  tinyml::DeviceInfo info = {};
  info.firmware_version = "host-test";
  info.board_id = "host";
  info.model_hash = "0123456789abcdef";
  info.input = {tinyml::kDtypeInt8, 2, {1, static_cast<int32_t>(kInputBytes), 0, 0, 0, 0}, 0.5f, -3};
  info.output = {tinyml::kDtypeInt8, 2, {1, static_cast<int32_t>(kOutputBytes), 0, 0, 0, 0}, 0.25f, 7};
  info.labels = kLabels;
  info.label_count = 3;
  info.rx_buffer_bytes = static_cast<uint16_t>(argc > 1 ? atoi(argv[1]) : 64);
  info.app = "host-test";

  static TestModel model;
  static StdioTransport transport;
  tinyml::ProtocolServer server(transport, model, info);
  uint32_t last_tick = transport.micros();
  for (;;) {
    if (!transport.pending()) {
      struct pollfd in = {0, POLLIN, 0};
      poll(&in, 1, 20);
    }
    server.poll();
    // The app's own line: shown in human mode, silent in binary mode.
    if (transport.micros() - last_tick > 300000) {
      last_tick = transport.micros();
      server.print_line("app: tick");
    }
  }
}
