#include "protocol_server.h"

#include <stdio.h>
#include <string.h>

#include "framing.h"

namespace tinyml {
namespace {

void put_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    p[i] = static_cast<uint8_t>(v >> (8 * i));
  }
}

uint16_t get_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

uint32_t get_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

// length u8 + bytes, cut at kMaxStringBytes (and to `room` bytes in all); returns the bytes written.
size_t put_string(uint8_t* p, const char* text, size_t room = kMaxStringBytes + 1) {
  size_t len = text ? strlen(text) : 0;
  if (len > kMaxStringBytes) {
    len = kMaxStringBytes;
  }
  if (len + 1 > room) {
    len = room - 1;
  }
  p[0] = static_cast<uint8_t>(len);
  if (len) {
    memcpy(p + 1, text, len);
  }
  return len + 1;
}

size_t put_tensor(uint8_t* p, const TensorInfo& t) {
  const uint8_t dims = t.dims > kMaxDims ? static_cast<uint8_t>(kMaxDims) : t.dims;
  size_t n = 0;
  p[n++] = t.dtype;
  p[n++] = dims;
  for (uint8_t i = 0; i < dims; ++i) {
    put_u32(p + n, static_cast<uint32_t>(t.shape[i]));
    n += 4;
  }
  uint32_t scale_bits;
  memcpy(&scale_bits, &t.scale, sizeof(scale_bits));
  put_u32(p + n, scale_bits);
  n += 4;
  put_u32(p + n, static_cast<uint32_t>(t.zero_point));
  return n + 4;
}

// "0.873" without printf's %f, which newlib-nano leaves out.
void format_decimal(char* out, size_t size, float value, unsigned decimals) {
  const bool negative = value < 0.0f;
  if (negative) {
    value = -value;
  }
  if (value > 4.0e9f) {
    snprintf(out, size, "%slarge", negative ? "-" : "");
    return;
  }
  uint32_t scale = 1;
  for (unsigned i = 0; i < decimals; ++i) {
    scale *= 10;
  }
  unsigned long whole = static_cast<unsigned long>(value);
  unsigned long frac = static_cast<unsigned long>((value - static_cast<float>(whole)) * static_cast<float>(scale) + 0.5f);
  if (frac >= scale) {
    whole += 1;
    frac -= scale;
  }
  snprintf(out, size, "%s%lu.%0*lu", negative ? "-" : "", whole, static_cast<int>(decimals), frac);
}

void format_shape(char* out, size_t size, const TensorInfo& t) {
  size_t n = static_cast<size_t>(snprintf(out, size, "["));
  for (uint8_t i = 0; i < t.dims && i < kMaxDims && n < size; ++i) {
    n += static_cast<size_t>(snprintf(out + n, size - n, i ? ", %ld" : "%ld", static_cast<long>(t.shape[i])));
  }
  if (n < size) {
    snprintf(out + n, size - n, "]");
  }
}

}  // namespace

ProtocolServer::ProtocolServer(Transport& transport, ModelRunner& runner, const DeviceInfo& info)
    : transport_(transport),
      runner_(runner),
      info_(info),
      handler_(nullptr),
      rx_len_(0),
      in_frame_(false),
      overflow_(false),
      binary_(false),
      greeted_(false),
      last_frame_us_(0),
      input_received_(0),
      result_valid_(false),
      last_invoke_seq_(0),
      last_latency_us_(0) {}

void ProtocolServer::poll() {
  if (!greeted_) {
    greeted_ = true;
    char line[128];
    snprintf(line, sizeof(line), "tinyml %s on %s, model %s: type help", info_.firmware_version, info_.board_id,
             info_.model_hash);
    print_line(line);
  }
  if (binary_ && transport_.micros() - last_frame_us_ > kBinaryIdleTimeoutMs * 1000UL) {
    binary_ = false;  // the host went away: speak to a person again
    in_frame_ = false;
    rx_len_ = 0;
    print_line("tinyml: back in human mode");
  }
  // Bounded, so that a host streaming bytes cannot starve the app's loop().
  bool drained = false;
  for (size_t n = 0; n < kMaxEncodedBytes + 2; ++n) {
    const int c = transport_.read();
    if (c < 0) {
      drained = true;
      break;
    }
    on_byte(static_cast<uint8_t>(c));
  }
  // The Arduino Serial Monitor may send without a line ending: a whole command with nothing
  // after it counts as typed.
  if (drained && !binary_ && !in_frame_ && is_command()) {
    on_line();
    rx_len_ = 0;
  }
}

bool ProtocolServer::is_command() const {
  static const char* const kCommands[] = {"help", "info", "run"};
  for (size_t i = 0; i < sizeof(kCommands) / sizeof(kCommands[0]); ++i) {
    const size_t len = strlen(kCommands[i]);
    if (rx_len_ == len && memcmp(rx_, kCommands[i], len) == 0) {
      return true;
    }
  }
  return false;
}

void ProtocolServer::print_line(const char* line) {
  if (binary_) {
    return;
  }
  print_text(line);
  print_text("\r\n");
}

void ProtocolServer::print_text(const char* text) {
  transport_.write(reinterpret_cast<const uint8_t*>(text), strlen(text));
}

void ProtocolServer::on_byte(uint8_t byte) {
  if (byte == kDelimiter) {
    if (in_frame_ && (rx_len_ > 0 || overflow_)) {
      if (!overflow_) {
        on_frame();
      }
      // Binary mode: every delimiter also opens the next frame, so garbage cannot shift the
      // framing. Human mode: back to typed text (the next frame brings its own delimiter).
      in_frame_ = binary_;
    } else {
      in_frame_ = true;
    }
    rx_len_ = 0;
    overflow_ = false;
    return;
  }
  if (in_frame_) {
    if (rx_len_ < sizeof(rx_)) {
      rx_[rx_len_++] = byte;
    } else {
      overflow_ = true;
    }
    return;
  }
  if (binary_) {
    return;  // stray bytes between frames
  }
  if (byte == '\n' || byte == '\r') {
    if (rx_len_ > 0) {
      on_line();
    }
    rx_len_ = 0;
  } else if (rx_len_ < kMaxLineBytes) {
    rx_[rx_len_++] = byte;
  }
}

void ProtocolServer::on_frame() {
  size_t len = 0;
  if (!cobs_decode(rx_, rx_len_, rx_, &len) || len < kHeaderBytes + kCrcBytes) {
    return;  // garbage or a truncated frame: wait for the next delimiter
  }
  const uint16_t crc = get_u16(rx_ + len - kCrcBytes);
  if (crc16(rx_, len - kCrcBytes) != crc) {
    return;
  }
  const uint8_t version = rx_[0];
  const uint8_t type = rx_[1];
  const uint8_t seq = rx_[2];
  const size_t payload_len = get_u16(rx_ + 3);
  if (payload_len != len - kHeaderBytes - kCrcBytes || (type & kResponseBit)) {
    return;
  }
  if (version != kProtocolVersion) {
    send_error(seq, kStatusBadVersion, type);
    return;
  }
  if (!binary_ && type != kMsgHello) {
    send_error(seq, kStatusNeedHandshake, type);
    return;
  }
  last_frame_us_ = transport_.micros();
  dispatch(type, seq, rx_ + kHeaderBytes, payload_len);
}

void ProtocolServer::dispatch(uint8_t type, uint8_t seq, const uint8_t* payload, size_t len) {
  switch (type) {
    case kMsgHello:
      reply_hello(seq, payload, len);
      return;
    case kMsgInfo:
      reply_info(seq);
      return;
    case kMsgLabels:
      reply_labels(seq, payload, len);
      return;
    case kMsgInput:
      reply_input(seq, payload, len);
      return;
    case kMsgInvoke:
      reply_invoke(seq);
      return;
    case kMsgOutput:
      reply_output(seq, payload, len);
      return;
    case kMsgHuman:
      send(kMsgHuman, seq, 0);
      binary_ = false;
      return;
    default:
      if (handler_ == nullptr || !handler_->on_request(*this, type, seq, payload, len)) {
        send_error(seq, kStatusUnknownType, type);
      }
      return;
  }
}

void ProtocolServer::reply_hello(uint8_t seq, const uint8_t* payload, size_t len) {
  if (len < 1) {
    send_error(seq, kStatusBadLength, kMsgHello);
    return;
  }
  if (payload[0] != kProtocolVersion) {
    send_error(seq, kStatusBadVersion, kMsgHello);
    return;
  }
  binary_ = true;
  input_received_ = 0;
  result_valid_ = false;
  uint8_t* out = out_payload();
  out[0] = kProtocolVersion;
  put_u16(out + 1, info_.rx_buffer_bytes);
  put_u16(out + 3, static_cast<uint16_t>(kMaxFrameBytes));
  send(kMsgHello, seq, 5);
}

void ProtocolServer::reply_info(uint8_t seq) {
  uint8_t* out = out_payload();
  size_t n = 0;
  out[n++] = kProtocolVersion;
  put_u16(out + n, info_.rx_buffer_bytes);
  n += 2;
  put_u32(out + n, static_cast<uint32_t>(runner_.arena_used_bytes()));
  n += 4;
  put_u16(out + n, info_.label_count);
  n += 2;
  n += put_string(out + n, info_.firmware_version);
  n += put_string(out + n, info_.board_id);
  n += put_string(out + n, info_.model_hash);
  n += put_tensor(out + n, info_.input);
  n += put_tensor(out + n, info_.output);
  // Last, in the room left: four strings of kMaxStringBytes and two 6-d tensors leave 23 bytes.
  n += put_string(out + n, info_.app, kMaxPayloadBytes - n);
  send(kMsgInfo, seq, n);
}

void ProtocolServer::reply_labels(uint8_t seq, const uint8_t* payload, size_t len) {
  if (len != 2) {
    send_error(seq, kStatusBadLength, kMsgLabels);
    return;
  }
  const uint16_t start = get_u16(payload);
  uint8_t* out = out_payload();
  size_t n = 5;
  uint8_t count = 0;
  for (uint16_t i = start; i < info_.label_count && info_.labels && count < 255; ++i) {
    const char* label = info_.labels[i];
    size_t label_len = label ? strlen(label) : 0;
    if (label_len > kMaxStringBytes) {
      label_len = kMaxStringBytes;
    }
    if (n + 1 + label_len > kMaxPayloadBytes) {
      break;
    }
    n += put_string(out + n, label);
    ++count;
  }
  put_u16(out, start);
  put_u16(out + 2, info_.label_count);
  out[4] = count;
  send(kMsgLabels, seq, n);
}

void ProtocolServer::reply_input(uint8_t seq, const uint8_t* payload, size_t len) {
  if (len < kInputChunkHeaderBytes) {
    send_error(seq, kStatusBadLength, kMsgInput);
    return;
  }
  const size_t offset = get_u32(payload);
  const size_t count = len - kInputChunkHeaderBytes;
  // A chunk may repeat (a retry) but never skip ahead; offset 0 starts a new tensor.
  const size_t received = offset == 0 ? 0 : input_received_;
  if (offset > received || offset + count > runner_.input_bytes()) {
    send_error(seq, kStatusBadOffset, kMsgInput);
    return;
  }
  memcpy(runner_.input() + offset, payload + kInputChunkHeaderBytes, count);
  input_received_ = offset + count > received ? offset + count : received;
  result_valid_ = false;
  put_u32(out_payload(), static_cast<uint32_t>(input_received_));
  send(kMsgInput, seq, 4);
}

void ProtocolServer::reply_invoke(uint8_t seq) {
  if (result_valid_ && seq == last_invoke_seq_) {
    send_invoke_result(seq);  // a retry: the invoke may have overwritten the input, so do not run again
    return;
  }
  if (input_received_ != runner_.input_bytes()) {
    send_error(seq, kStatusInputIncomplete, kMsgInvoke);
    return;
  }
  const uint32_t start = transport_.micros();
  const bool ok = runner_.invoke();
  last_latency_us_ = transport_.micros() - start;
  input_received_ = 0;
  result_valid_ = ok;
  if (!ok) {
    send_error(seq, kStatusInvokeFailed, kMsgInvoke);
    return;
  }
  last_invoke_seq_ = seq;
  send_invoke_result(seq);
}

void ProtocolServer::send_invoke_result(uint8_t seq) {
  uint8_t* out = out_payload();
  const size_t total = runner_.output_bytes();
  size_t count = kMaxPayloadBytes - kInvokeReplyHeaderBytes;
  if (count > total) {
    count = total;
  }
  put_u32(out, last_latency_us_);
  put_u32(out + 4, static_cast<uint32_t>(total));
  memcpy(out + kInvokeReplyHeaderBytes, runner_.output(), count);
  send(kMsgInvoke, seq, kInvokeReplyHeaderBytes + count);
}

void ProtocolServer::reply_output(uint8_t seq, const uint8_t* payload, size_t len) {
  if (len != kOutputChunkHeaderBytes) {
    send_error(seq, kStatusBadLength, kMsgOutput);
    return;
  }
  if (!result_valid_) {
    send_error(seq, kStatusNoResult, kMsgOutput);
    return;
  }
  const size_t offset = get_u32(payload);
  const size_t total = runner_.output_bytes();
  if (offset > total) {
    send_error(seq, kStatusBadOffset, kMsgOutput);
    return;
  }
  size_t count = kMaxPayloadBytes - kOutputChunkHeaderBytes;
  if (count > total - offset) {
    count = total - offset;
  }
  uint8_t* out = out_payload();
  put_u32(out, static_cast<uint32_t>(offset));
  memcpy(out + kOutputChunkHeaderBytes, runner_.output() + offset, count);
  send(kMsgOutput, seq, kOutputChunkHeaderBytes + count);
}

void ProtocolServer::send(uint8_t type, uint8_t seq, size_t payload_len) {
  tx_[0] = kProtocolVersion;
  tx_[1] = static_cast<uint8_t>(type | kResponseBit);
  tx_[2] = seq;
  put_u16(tx_ + 3, static_cast<uint16_t>(payload_len));
  const size_t body = kHeaderBytes + payload_len;
  put_u16(tx_ + body, crc16(tx_, body));
  wire_[0] = kDelimiter;
  const size_t encoded = cobs_encode(tx_, body + kCrcBytes, wire_ + 1);
  wire_[1 + encoded] = kDelimiter;
  transport_.write(wire_, encoded + 2);
}

void ProtocolServer::send_frame(uint8_t type, uint8_t seq, const uint8_t* payload, size_t len) {
  if (len > kMaxPayloadBytes) {
    len = kMaxPayloadBytes;
  }
  memcpy(out_payload(), payload, len);
  send(type, seq, len);
}

void ProtocolServer::send_error(uint8_t seq, uint8_t status, uint8_t request_type) {
  uint8_t* out = out_payload();
  out[0] = status;
  out[1] = request_type;
  const char* text = status_text(status);
  size_t len = strlen(text);
  if (len > kMaxPayloadBytes - 2) {
    len = kMaxPayloadBytes - 2;
  }
  memcpy(out + 2, text, len);
  send(kMsgError, seq, 2 + len);
}

void ProtocolServer::on_line() {
  // Trim the typed command; rx_ holds at most kMaxLineBytes of it.
  size_t start = 0;
  size_t end = rx_len_;
  while (start < end && (rx_[start] == ' ' || rx_[start] == '\t')) {
    ++start;
  }
  while (end > start && (rx_[end - 1] == ' ' || rx_[end - 1] == '\t')) {
    --end;
  }
  char command[kMaxLineBytes + 1];
  memcpy(command, rx_ + start, end - start);
  command[end - start] = '\0';
  if (command[0] == '\0') {
    return;
  }
  if (strcmp(command, "help") == 0) {
    print_line("commands: help (this list), info (board and model), run (one inference on the current input)");
  } else if (strcmp(command, "info") == 0) {
    print_info();
  } else if (strcmp(command, "run") == 0) {
    run_once();
  } else {
    char line[kMaxLineBytes + 48];
    snprintf(line, sizeof(line), "unknown command '%s': type help", command);
    print_line(line);
  }
}

void ProtocolServer::print_info() {
  char line[160];
  snprintf(line, sizeof(line), "tinyml firmware %s, protocol %u, board %s", info_.firmware_version,
           static_cast<unsigned>(kProtocolVersion), info_.board_id);
  print_line(line);
  if (info_.model_hash == nullptr || info_.model_hash[0] == '\0') {
    snprintf(line, sizeof(line), "no model: this is the %s app", info_.app ? info_.app : "unnamed");
    print_line(line);
    return;
  }
  snprintf(line, sizeof(line), "model %s, arena %lu bytes used", info_.model_hash,
           static_cast<unsigned long>(runner_.arena_used_bytes()));
  print_line(line);
  const TensorInfo* tensors[2] = {&info_.input, &info_.output};
  const char* names[2] = {"input ", "output"};
  for (int i = 0; i < 2; ++i) {
    char shape[80];
    char scale[24];
    format_shape(shape, sizeof(shape), *tensors[i]);
    format_decimal(scale, sizeof(scale), tensors[i]->scale, 6);
    snprintf(line, sizeof(line), "%s %s %s scale %s zero point %ld", names[i], dtype_name(tensors[i]->dtype), shape,
             scale, static_cast<long>(tensors[i]->zero_point));
    print_line(line);
  }
  if (info_.label_count && info_.labels) {
    print_text("labels:");
    for (uint16_t i = 0; i < info_.label_count; ++i) {
      print_text(i ? ", " : " ");
      print_text(info_.labels[i]);
    }
    print_text("\r\n");
  }
}

void ProtocolServer::run_once() {
  const uint32_t start = transport_.micros();
  const bool ok = runner_.invoke();
  const uint32_t latency = transport_.micros() - start;
  input_received_ = 0;
  result_valid_ = false;
  if (!ok) {
    print_line("run: invoke failed");
    return;
  }
  const TensorInfo& out = info_.output;
  const size_t elements = runner_.output_bytes() / dtype_bytes(out.dtype);
  if (elements == 0) {
    print_line("run: the model has an empty output");
    return;
  }
  size_t best = 0;
  float best_score = 0.0f;
  for (size_t i = 0; i < elements; ++i) {
    float score;
    if (out.dtype == kDtypeFloat32) {
      memcpy(&score, runner_.output() + 4 * i, sizeof(score));
    } else if (out.dtype == kDtypeUint8) {
      score = out.scale * static_cast<float>(static_cast<int32_t>(reinterpret_cast<const uint8_t*>(runner_.output())[i]) - out.zero_point);
    } else {
      score = out.scale * static_cast<float>(static_cast<int32_t>(runner_.output()[i]) - out.zero_point);
    }
    if (i == 0 || score > best_score) {
      best = i;
      best_score = score;
    }
  }
  char label[24];
  const char* name = label;
  if (best < info_.label_count && info_.labels) {
    name = info_.labels[best];
  } else {
    snprintf(label, sizeof(label), "class %lu", static_cast<unsigned long>(best));
  }
  char score_text[24];
  format_decimal(score_text, sizeof(score_text), best_score, 3);
  char line[kMaxStringBytes + 80];
  snprintf(line, sizeof(line), "prediction: %s score %s (%lu us)", name, score_text, static_cast<unsigned long>(latency));
  print_line(line);
}

}  // namespace tinyml
