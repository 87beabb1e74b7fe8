// The board's serial port: CMSDK APB UART0, which QEMU connects to the host (a TCP socket).
// Received bytes go through an interrupt into a ring of the size the board profile names
// (the real board's USB serial receive buffer), so the host's chunking meets the same limit.
#ifndef TINYML_EMULATOR_UART0_H_
#define TINYML_EMULATOR_UART0_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Sets the baud rate divider and enables the transmitter, the receiver and its interrupt.
// The socket ignores the rate; QEMU only wants a valid divider.
void uart0_begin(uint32_t baud);
// Bytes waiting in the receive ring.
size_t uart0_available(void);
// The next received byte, or -1.
int uart0_read(void);
// Sends one byte; waits while the transmitter holds the previous one.
void uart0_write(uint8_t byte);
// Waits until the transmitter has handed its last byte to the host.
void uart0_flush(void);

#ifdef __cplusplus
}
#endif

#endif  // TINYML_EMULATOR_UART0_H_
