// The Arduino API of the emulated board: the subset that the rendered firmware and the TFLM
// library use, with the names and types of ArduinoCore-API (as the Nano 33 BLE's mbed core
// has them). What the emulated board does not have (pins, the nRF52840's peripherals) is
// declared but not defined: code that only needs to compile does, and a firmware that calls
// it fails to link, naming the function, instead of running against hardware that is not there.
#ifndef TINYML_EMULATOR_ARDUINO_H_
#define TINYML_EMULATOR_ARDUINO_H_

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>  // ulong, as newlib gives it to gnu dialects

typedef uint8_t byte;
typedef bool boolean;
typedef uint8_t pin_size_t;
typedef void (*voidFuncPtr)(void);

typedef enum { LOW = 0, HIGH = 1, CHANGE = 2, FALLING = 3, RISING = 4 } PinStatus;
typedef enum { INPUT = 0, OUTPUT = 1, INPUT_PULLUP = 2, INPUT_PULLDOWN = 3 } PinMode;

// nRF52840 pin names (mbed PinNames.h: port * 32 + pin) that the library's peripheral code names.
typedef enum { P0_27 = 27, P1_2 = 34, P1_11 = 43, P1_12 = 44 } PinName;
#define D8 8u
#define D13 13u
#define digitalPinToInterrupt(pin) (pin)

#define interrupts() __asm__ volatile("cpsie i" ::: "memory")
#define noInterrupts() __asm__ volatile("cpsid i" ::: "memory")

#ifdef __cplusplus
extern "C" {
#endif

// Time (clock.c). The counters wrap at 2^32, as on the board.
unsigned long millis(void);
unsigned long micros(void);
void delay(unsigned long ms);
void delayMicroseconds(unsigned int us);

// Pins: not on the emulated board (declared only, see above).
void pinMode(pin_size_t pin, PinMode mode);
void digitalWrite(pin_size_t pin, PinStatus value);
PinStatus digitalRead(pin_size_t pin);
void attachInterrupt(pin_size_t interrupt, voidFuncPtr callback, PinStatus mode);

// The sketch.
void setup(void);
void loop(void);

#ifdef __cplusplus
}  // extern "C"

// The mbed core also takes an int level (ArduinoCore-API's Compat.h).
void digitalWrite(pin_size_t pin, int value);

namespace arduino {

// ArduinoCore-API's byte ring (api/RingBuffer.h): the same members and methods.
template <int N>
class RingBufferN {
 public:
  uint8_t _aucBuffer[N];

  RingBufferN() { clear(); }
  void store_char(uint8_t c) {
    if (_numElems < N) {
      _aucBuffer[_iHead] = c;
      _iHead = nextIndex(_iHead);
      _numElems = _numElems + 1;
    }
  }
  void clear() {
    _iHead = 0;
    _iTail = 0;
    _numElems = 0;
  }
  int read_char() {
    if (_numElems == 0) return -1;
    const uint8_t value = _aucBuffer[_iTail];
    _iTail = nextIndex(_iTail);
    _numElems = _numElems - 1;
    return value;
  }
  int available() { return _numElems; }
  int availableForStore() { return N - _numElems; }
  int peek() { return _numElems == 0 ? -1 : _aucBuffer[_iTail]; }
  bool isFull() { return _numElems == N; }

 private:
  int nextIndex(int index) { return (index + 1) % N; }
  volatile int _iHead;
  volatile int _iTail;
  volatile int _numElems;
};

// `Serial`: UART0 of the emulated board, which QEMU connects to the host. Like the board's USB
// serial port, it is always "connected" (operator bool), so nothing waits for a monitor.
class EmulatedSerial {
 public:
  void begin(unsigned long baud);
  int available();
  int read();
  size_t write(uint8_t byte);
  size_t write(const uint8_t* data, size_t len);
  void flush();
  explicit operator bool() const { return true; }

  size_t print(const char* text);
  size_t print(char c);
  size_t print(long value);
  size_t print(unsigned long value);
  size_t print(int value) { return print(static_cast<long>(value)); }
  size_t print(unsigned int value) { return print(static_cast<unsigned long>(value)); }
  size_t println();
  template <typename T>
  size_t println(T value) {
    const size_t n = print(value);
    return n + println();
  }
};

}  // namespace arduino

using namespace arduino;

extern EmulatedSerial Serial;

#endif  // __cplusplus

#endif  // TINYML_EMULATOR_ARDUINO_H_
