#include "uart0.h"

#include "mps2_an386.h"

// The board profile's rx_buffer_bytes (the build passes it); 256 is the Nano 33 BLE's USB ring.
#ifndef EMULATOR_SERIAL_RX_BUFFER_BYTES
#define EMULATOR_SERIAL_RX_BUFFER_BYTES 256
#endif

static uint8_t rx_ring[EMULATOR_SERIAL_RX_BUFFER_BYTES];
static volatile size_t rx_head;  // next slot the interrupt writes
static volatile size_t rx_tail;  // next slot the reader takes
static volatile size_t rx_count;

// Moves received bytes from the UART into the ring while there is room. When the ring is full
// the byte stays in the UART, and QEMU holds back the rest in the socket (it delivers only into
// an empty receive register): flow control, as USB gives the real board, so nothing is lost.
static void drain_receiver(void) {
  while ((UART0_STATE & UART_STATE_RX_FULL) && rx_count < EMULATOR_SERIAL_RX_BUFFER_BYTES) {
    rx_ring[rx_head] = (uint8_t)UART0_DATA;
    rx_head = (rx_head + 1) % EMULATOR_SERIAL_RX_BUFFER_BYTES;
    rx_count = rx_count + 1;
  }
}

void UART0RX_Handler(void) {
  UART0_INTSTATUS = UART_INT_RX;  // write-one-to-clear, before draining, so no byte goes unsignalled
  drain_receiver();
}

void uart0_begin(uint32_t baud) {
  UART0_BAUDDIV = MPS2_SYSCLK_HZ / (baud ? baud : 115200u);
  UART0_CTRL = UART_CTRL_TX_EN | UART_CTRL_RX_EN | UART_CTRL_RX_INTEN;
  nvic_enable(UART0_RX_IRQN, PRIORITY_UART_RX);
}

size_t uart0_available(void) { return rx_count; }

int uart0_read(void) {
  const uint32_t primask = irq_save();
  int byte = -1;
  if (rx_count > 0) {
    byte = rx_ring[rx_tail];
    rx_tail = (rx_tail + 1) % EMULATOR_SERIAL_RX_BUFFER_BYTES;
    rx_count = rx_count - 1;
    drain_receiver();  // a byte held back while the ring was full
  }
  irq_restore(primask);
  return byte;
}

void uart0_write(uint8_t byte) {
  // Before uart0_begin() (a fault in a static constructor) the byte is dropped: QEMU's model
  // would hold it as "TX full" for ever, and the next write would wait for ever.
  if (!(UART0_CTRL & UART_CTRL_TX_EN)) return;
  while (UART0_STATE & UART_STATE_TX_FULL) {
  }
  UART0_DATA = byte;
}

void uart0_flush(void) {
  while (UART0_STATE & UART_STATE_TX_FULL) {
  }
}
