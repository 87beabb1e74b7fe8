// Arduino's clock on the emulated board: SysTick on the 25 MHz system clock interrupts every
// millisecond; micros() adds the ticks elapsed in the current millisecond. With -icount shift=0
// QEMU's virtual time is the instruction count (1 ns each), so micros() counts exactly 1000
// instructions per microsecond, whatever the host's speed. Both counters wrap at 2^32, as on
// an Arduino (micros after about 71.6 minutes, millis after about 49.7 days).
#include "clock.h"

#include <Arduino.h>

#include "mps2_an386.h"

#define TICKS_PER_MS (MPS2_SYSCLK_HZ / 1000u)
#define TICKS_PER_US (MPS2_SYSCLK_HZ / 1000000u)

static volatile uint32_t elapsed_ms;

void SysTick_Handler(void) { elapsed_ms = elapsed_ms + 1; }

void clock_begin(void) {
  SYST_RVR = TICKS_PER_MS - 1;
  SYST_CVR = 0;
  SCB_SHPR3 = (SCB_SHPR3 & 0x00FFFFFFu) | ((uint32_t)PRIORITY_SYSTICK << 24);
  SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE_CPU;
}

unsigned long millis(void) { return elapsed_ms; }

unsigned long micros(void) {
  const uint32_t primask = irq_save();
  uint32_t ms = elapsed_ms;
  const uint32_t count = SYST_CVR;
  // The counter reloaded but its interrupt is still pending (masked here): count that
  // millisecond. Just after a reload the counter is near the top, never near the bottom.
  if ((SCB_ICSR & SCB_ICSR_PENDSTSET) && count > TICKS_PER_MS / 2) {
    ms += 1;
  }
  irq_restore(primask);
  return ms * 1000u + (TICKS_PER_MS - 1u - count) / TICKS_PER_US;
}

void delayMicroseconds(unsigned int us) {
  const uint32_t start = micros();
  while (micros() - start < us) {
  }
}

void delay(unsigned long ms) {
  uint32_t start = micros();
  // Idle between ticks, as the mbed core sleeps the thread: QEMU then waits in real time
  // instead of spinning the host's CPU. Counted per millisecond, so any `ms` works.
  while (ms > 0) {
    if (micros() - start >= 1000u) {
      ms -= 1;
      start += 1000u;
    } else {
      __asm__ volatile("wfi");
    }
  }
}
