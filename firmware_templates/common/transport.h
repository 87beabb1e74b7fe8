// The byte-stream seam of the firmware: Serial on a board, a pty or stdin/stdout on the host.
#ifndef TINYML_TRANSPORT_H_
#define TINYML_TRANSPORT_H_

#include <stddef.h>
#include <stdint.h>

namespace tinyml {

class Transport {
 public:
  virtual ~Transport() {}
  virtual int read() = 0; /* -1 when no byte */
  virtual void write(const uint8_t* data, size_t len) = 0;
  // A free-running microsecond clock (wraps after about 71 minutes; differences stay right).
  virtual uint32_t micros() = 0;
};

}  // namespace tinyml

#endif  // TINYML_TRANSPORT_H_
