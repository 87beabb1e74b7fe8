#include "framing.h"

namespace tinyml {

uint16_t crc16(const uint8_t* data, size_t len) {
  uint16_t crc = 0xFFFF;
  for (size_t i = 0; i < len; ++i) {
    crc = static_cast<uint16_t>(crc ^ (static_cast<uint16_t>(data[i]) << 8));
    for (int bit = 0; bit < 8; ++bit) {
      if (crc & 0x8000) {
        crc = static_cast<uint16_t>((crc << 1) ^ 0x1021);
      } else {
        crc = static_cast<uint16_t>(crc << 1);
      }
    }
  }
  return crc;
}

size_t cobs_encode(const uint8_t* in, size_t len, uint8_t* out) {
  size_t code_pos = 0;
  size_t write = 1;
  uint8_t code = 1;
  for (size_t i = 0; i < len; ++i) {
    if (in[i] == 0) {
      out[code_pos] = code;
      code_pos = write++;
      code = 1;
    } else {
      out[write++] = in[i];
      ++code;
      if (code == 0xFF) {
        out[code_pos] = code;
        code_pos = write++;
        code = 1;
      }
    }
  }
  out[code_pos] = code;
  return write;
}

bool cobs_decode(const uint8_t* in, size_t len, uint8_t* out, size_t* out_len) {
  size_t read = 0;
  size_t write = 0;
  while (read < len) {
    const uint8_t code = in[read];
    if (code == 0 || read + code > len) {
      return false;
    }
    ++read;
    for (uint8_t i = 1; i < code; ++i) {
      const uint8_t byte = in[read++];
      if (byte == 0) {
        return false;
      }
      out[write++] = byte;
    }
    if (code != 0xFF && read < len) {
      out[write++] = 0;
    }
  }
  *out_len = write;
  return true;
}

}  // namespace tinyml
