// Frame integrity and byte stuffing of the serial protocol (see tinyml/firmware/protocol.py):
// CRC-16/CCITT-FALSE and COBS, with caller-provided buffers and no heap.
#ifndef TINYML_FRAMING_H_
#define TINYML_FRAMING_H_

#include <stddef.h>
#include <stdint.h>

namespace tinyml {

// CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF ("123456789" -> 0x29B1).
uint16_t crc16(const uint8_t* data, size_t len);

// Encodes `len` bytes into `out`, which must hold len + len / 254 + 1 bytes; returns the
// encoded length. The output holds no 0x00 byte.
size_t cobs_encode(const uint8_t* in, size_t len, uint8_t* out);

// Decodes `len` COBS bytes into `out` (which may be `in`: decoding never writes ahead of
// reading). Returns false on a malformed block.
bool cobs_decode(const uint8_t* in, size_t len, uint8_t* out, size_t* out_len);

}  // namespace tinyml

#endif  // TINYML_FRAMING_H_
