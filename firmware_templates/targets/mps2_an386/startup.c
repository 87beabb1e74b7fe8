// Reset and exceptions of the emulated board. QEMU loads the ELF and starts the core from the
// vector table at address 0 (VTOR resets to 0 on mps2-an386).
#include <stdint.h>
#include <string.h>

#include "mps2_an386.h"
#include "semihosting.h"
#include "uart0.h"

// From the linker script.
extern uint32_t __stack_bottom[], __stack_top[];
extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];

extern int main(void);
extern void __libc_init_array(void);

void Reset_Handler(void) __attribute__((noreturn));
void HardFault_Handler(void);
void Unexpected_Handler(void);
// Interrupts that the board support may handle; the ones it does not are unexpected.
void SysTick_Handler(void) __attribute__((weak, alias("Unexpected_Handler")));
void UART0RX_Handler(void) __attribute__((weak, alias("Unexpected_Handler")));
void TIMER0_Handler(void) __attribute__((weak, alias("Unexpected_Handler")));

typedef void (*Vector)(void);

// 16 system exceptions, then the AN386's 32 interrupts. MemManage, BusFault and UsageFault are
// left disabled (SHCSR), so every fault escalates to HardFault, whose report names the cause.
__attribute__((section(".vectors"), used)) static const Vector vectors[16 + 32] = {
    (Vector)__stack_top,
    Reset_Handler,
    Unexpected_Handler,  // NMI
    HardFault_Handler,
    HardFault_Handler,  // MemManage
    HardFault_Handler,  // BusFault
    HardFault_Handler,  // UsageFault
    0, 0, 0, 0,
    Unexpected_Handler,  // SVCall
    Unexpected_Handler,  // DebugMonitor
    0,
    Unexpected_Handler,  // PendSV
    SysTick_Handler,
    UART0RX_Handler,  // 0: UART0 receive
    // 1-7
    Unexpected_Handler, Unexpected_Handler, Unexpected_Handler, Unexpected_Handler,
    Unexpected_Handler, Unexpected_Handler, Unexpected_Handler,
    TIMER0_Handler,  // 8: timer 0 (the microphone replay)
    // 9-31
    Unexpected_Handler, Unexpected_Handler, Unexpected_Handler, Unexpected_Handler,
    Unexpected_Handler, Unexpected_Handler, Unexpected_Handler, Unexpected_Handler,
    Unexpected_Handler, Unexpected_Handler, Unexpected_Handler, Unexpected_Handler,
    Unexpected_Handler, Unexpected_Handler, Unexpected_Handler, Unexpected_Handler,
    Unexpected_Handler, Unexpected_Handler, Unexpected_Handler, Unexpected_Handler,
    Unexpected_Handler, Unexpected_Handler, Unexpected_Handler,
};

// What the toolchain's start files (left out: -nostartfiles) would give. newlib's
// __libc_init_array calls _init() (crti.o), though the constructors are in .init_array; and
// static objects with destructors register them against __dso_handle (crtbegin.o).
void _init(void) {}
void* __dso_handle = &__dso_handle;

void Reset_Handler(void) {
  // Before any floating-point instruction, which would otherwise fault (NOCP).
  SCB_CPACR |= SCB_CPACR_CP10_CP11_FULL;
  __asm__ volatile("dsb\n isb" ::: "memory");
  // A 32-byte no-access region at the bottom of the stack: an overflow faults there instead of
  // overwriting the heap and .bss. The fault cannot be stacked either, so the core locks up,
  // which QEMU reports ("Lockup") and the runner names as a likely stack overflow.
  MPU_RBAR = (uint32_t)__stack_bottom | MPU_RBAR_VALID | 0u;
  MPU_RASR = MPU_RASR_ENABLE | MPU_RASR_SIZE_32_BYTES | MPU_RASR_NO_ACCESS | MPU_RASR_XN;
  MPU_CTRL = MPU_CTRL_ENABLE | MPU_CTRL_PRIVDEFENA;
  __asm__ volatile("dsb\n isb" ::: "memory");
  memcpy(__data_start, __data_load, (size_t)((char*)__data_end - (char*)__data_start));
  memset(__bss_start, 0, (size_t)((char*)__bss_end - (char*)__bss_start));
  __libc_init_array();
  main();
  semihosting_exit(0);
}

static void put_text(char* line, size_t* n, const char* text) {
  while (*text) line[(*n)++] = *text++;
}

static void put_hex(char* line, size_t* n, const char* name, uint32_t value) {
  put_text(line, n, name);
  put_text(line, n, "=0x");
  for (int shift = 28; shift >= 0; shift -= 4) line[(*n)++] = "0123456789abcdef"[(value >> shift) & 0xF];
}

// One line, on the serial port (for whoever watches it) and on the host's console (for the
// runner), then QEMU exits with a code the runner knows. No printf and no heap: the fault may
// have been in either. `frame` is the stacked r0-r3, r12, lr, pc, xPSR.
static void report_and_exit(const char* what, const uint32_t* frame, int exit_code) __attribute__((noreturn));
static void report_and_exit(const char* what, const uint32_t* frame, int exit_code) {
  char line[200];
  size_t n = 0;
  put_text(line, &n, "tinyml-emulator: ");
  put_text(line, &n, what);
  put_hex(line, &n, " pc", frame[6]);
  put_hex(line, &n, " lr", frame[5]);
  put_hex(line, &n, " cfsr", SCB_CFSR);
  put_hex(line, &n, " hfsr", SCB_HFSR);
  put_hex(line, &n, " bfar", SCB_BFAR);
  uint32_t ipsr;
  __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
  put_hex(line, &n, " exception", ipsr);
  line[n] = '\0';
  semihosting_write0(line);
  semihosting_write0("\n");
  put_text(line, &n, "\r\n");
  for (size_t i = 0; i < n; ++i) uart0_write((uint8_t)line[i]);
  semihosting_exit(exit_code);
}

void hard_fault_report(const uint32_t* frame) { report_and_exit("HardFault", frame, EMULATOR_EXIT_HARDFAULT); }

void unexpected_report(const uint32_t* frame) {
  report_and_exit("unexpected exception", frame, EMULATOR_EXIT_UNEXPECTED_INTERRUPT);
}

// The stacked frame is on the process or the main stack, as bit 2 of EXC_RETURN says.
__attribute__((naked)) void HardFault_Handler(void) {
  __asm__ volatile(
      "tst lr, #4\n"
      "ite eq\n"
      "mrseq r0, msp\n"
      "mrsne r0, psp\n"
      "b hard_fault_report\n");
}

__attribute__((naked)) void Unexpected_Handler(void) {
  __asm__ volatile(
      "tst lr, #4\n"
      "ite eq\n"
      "mrseq r0, msp\n"
      "mrsne r0, psp\n"
      "b unexpected_report\n");
}
