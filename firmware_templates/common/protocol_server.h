// The firmware side of the serial protocol (defined in tinyml/firmware/protocol.py, constants in the
// rendered tinyml_protocol.h). Plain C++: no Arduino, no TFLM, no heap; fixed buffers only.
//
// The app calls poll() from loop(). The server starts in human mode (readable lines and the
// typed commands help, info, run); a HELLO frame from the host switches it to binary mode,
// a HUMAN frame or kBinaryIdleTimeoutMs without a valid frame switches it back.
#ifndef TINYML_PROTOCOL_SERVER_H_
#define TINYML_PROTOCOL_SERVER_H_

#include <stddef.h>
#include <stdint.h>

#include "model_runner.h"
#include "tinyml_protocol.h"
#include "transport.h"

namespace tinyml {

struct TensorInfo {
  uint8_t dtype;  // a kDtype* constant
  uint8_t dims;
  int32_t shape[kMaxDims];
  float scale;
  int32_t zero_point;
};

struct DeviceInfo {
  const char* firmware_version;
  const char* board_id;
  const char* model_hash;  // 16 hex digits of the model's SHA-256 (ModelFacts.short_hash)
  TensorInfo input;
  TensorInfo output;
  const char* const* labels;  // may be null when label_count is 0
  uint16_t label_count;
  uint16_t rx_buffer_bytes;  // the board's serial receive buffer; the host sizes chunks by it
  const char* app;           // the firmware app (INFO names it, so a host can say what runs)
};

class ProtocolServer;

// An app's own requests (the capture app's CAPTURE_*): the server hands it every binary-mode
// request type it does not know itself, before answering UNKNOWN_TYPE.
class RequestHandler {
 public:
  virtual ~RequestHandler() {}
  // True when the handler knew the type (and answered it through the server).
  virtual bool on_request(ProtocolServer& server, uint8_t type, uint8_t seq, const uint8_t* payload, size_t len) = 0;
};

class ProtocolServer {
 public:
  ProtocolServer(Transport& transport, ModelRunner& runner, const DeviceInfo& info);
  // Consumes the bytes available now (a bounded number per call) and answers them.
  void poll();
  bool binary_mode() const { return binary_; }
  // One line of text for a person (e.g. the app's prediction); nothing in binary mode.
  void print_line(const char* line);
  void set_request_handler(RequestHandler* handler) { handler_ = handler; }
  // A frame of `type` (the response bit is added) with `len` payload bytes, at most
  // kMaxPayloadBytes: a reply from a RequestHandler, or a message the device sends unasked.
  void send_frame(uint8_t type, uint8_t seq, const uint8_t* payload, size_t len);
  void send_error(uint8_t seq, uint8_t status, uint8_t request_type);

 private:
  void on_byte(uint8_t byte);
  void on_frame();
  void on_line();
  bool is_command() const;
  void dispatch(uint8_t type, uint8_t seq, const uint8_t* payload, size_t len);
  void reply_hello(uint8_t seq, const uint8_t* payload, size_t len);
  void reply_info(uint8_t seq);
  void reply_labels(uint8_t seq, const uint8_t* payload, size_t len);
  void reply_input(uint8_t seq, const uint8_t* payload, size_t len);
  void reply_invoke(uint8_t seq);
  void reply_output(uint8_t seq, const uint8_t* payload, size_t len);
  void send_invoke_result(uint8_t seq);
  void send(uint8_t type, uint8_t seq, size_t payload_len);
  void print_text(const char* text);
  void print_info();
  void run_once();
  uint8_t* out_payload() { return tx_ + kHeaderBytes; }

  Transport& transport_;
  ModelRunner& runner_;
  const DeviceInfo& info_;
  RequestHandler* handler_;
  uint8_t rx_[kMaxEncodedBytes];
  size_t rx_len_;
  bool in_frame_;
  bool overflow_;
  bool binary_;
  bool greeted_;
  uint32_t last_frame_us_;
  size_t input_received_;
  bool result_valid_;
  uint8_t last_invoke_seq_;
  uint32_t last_latency_us_;
  uint8_t tx_[kMaxFrameBytes];
  uint8_t wire_[kMaxEncodedBytes + 2];
};

}  // namespace tinyml

#endif  // TINYML_PROTOCOL_SERVER_H_
