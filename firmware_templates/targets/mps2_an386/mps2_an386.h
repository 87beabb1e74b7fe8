// The parts of QEMU's mps2-an386 (Arm MPS2 board, AN386 FPGA image: a Cortex-M4F) that the
// emulated board uses: the Cortex-M4 system registers, CMSDK APB UART0 and CMSDK timer 0.
// Addresses and interrupt numbers from QEMU hw/arm/mps2.c (AN385/AN386 share the memory map).
#ifndef TINYML_EMULATOR_MPS2_AN386_H_
#define TINYML_EMULATOR_MPS2_AN386_H_

#include <stdint.h>

#define MPS2_REG(address) (*(volatile uint32_t*)(address))

// The system clock of the FPGA image, which QEMU also gives SysTick (CLKSOURCE = processor
// clock) and the CMSDK timers. With -icount shift=0 one instruction takes 1 ns, so one tick is
// exactly 40 instructions.
#define MPS2_SYSCLK_HZ 25000000u

// Cortex-M4 system control block and NVIC (Armv7-M ARM, B3.2).
#define SCB_ICSR MPS2_REG(0xE000ED04u)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_SHPR3 MPS2_REG(0xE000ED20u)  // bits 31..24: SysTick priority
#define SCB_CFSR MPS2_REG(0xE000ED28u)
#define SCB_HFSR MPS2_REG(0xE000ED2Cu)
#define SCB_BFAR MPS2_REG(0xE000ED38u)
#define SCB_CPACR MPS2_REG(0xE000ED88u)
#define SCB_CPACR_CP10_CP11_FULL (0xFu << 20)
#define NVIC_ISER0 MPS2_REG(0xE000E100u)

// The MPU (Armv7-M ARM, B3.5): PMSAv7, 8 regions.
#define MPU_CTRL MPS2_REG(0xE000ED94u)
#define MPU_RBAR MPS2_REG(0xE000ED9Cu)
#define MPU_RASR MPS2_REG(0xE000EDA0u)
#define MPU_CTRL_ENABLE (1u << 0)
#define MPU_CTRL_PRIVDEFENA (1u << 2)  // the default memory map wherever no region says otherwise
#define MPU_RBAR_VALID (1u << 4)
#define MPU_RASR_ENABLE (1u << 0)
#define MPU_RASR_SIZE_32_BYTES (4u << 1)  // 2^(4+1)
#define MPU_RASR_NO_ACCESS (0u << 24)
#define MPU_RASR_XN (1u << 28)
#define NVIC_IPR(irq) (*(volatile uint8_t*)(0xE000E400u + (irq)))

// SysTick (Armv7-M ARM, B3.3).
#define SYST_CSR MPS2_REG(0xE000E010u)
#define SYST_RVR MPS2_REG(0xE000E014u)
#define SYST_CVR MPS2_REG(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE_CPU (1u << 2)

// CMSDK APB UART 0 (Cortex-M System Design Kit TRM, DDI0479C, 4.3), the board's serial port.
#define UART0_DATA MPS2_REG(0x40004000u)
#define UART0_STATE MPS2_REG(0x40004004u)
#define UART0_CTRL MPS2_REG(0x40004008u)
#define UART0_INTSTATUS MPS2_REG(0x4000400Cu)
#define UART0_BAUDDIV MPS2_REG(0x40004010u)
#define UART_STATE_TX_FULL (1u << 0)
#define UART_STATE_RX_FULL (1u << 1)
#define UART_CTRL_TX_EN (1u << 0)
#define UART_CTRL_RX_EN (1u << 1)
#define UART_CTRL_RX_INTEN (1u << 3)
#define UART_INT_RX (1u << 1)

// CMSDK APB timer 0 (DDI0479C, 4.4): a 32-bit down-counter at the system clock.
#define TIMER0_CTRL MPS2_REG(0x40000000u)
#define TIMER0_VALUE MPS2_REG(0x40000004u)
#define TIMER0_RELOAD MPS2_REG(0x40000008u)
#define TIMER0_INTCLEAR MPS2_REG(0x4000000Cu)
#define TIMER_CTRL_ENABLE (1u << 0)
#define TIMER_CTRL_INTEN (1u << 3)

// External interrupt numbers (QEMU hw/arm/mps2.c, AN385/AN386).
#define UART0_RX_IRQN 0
#define TIMER0_IRQN 8

// Priorities (the M4 implements the top 3 bits here): the UART receiver is the most urgent,
// as on the board, where a lost byte costs the host a retry.
#define PRIORITY_UART_RX 0x20u
#define PRIORITY_SYSTICK 0x40u
#define PRIORITY_SENSOR 0x60u

static inline uint32_t irq_save(void) {
  uint32_t primask;
  __asm__ volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
  return primask;
}

static inline void irq_restore(uint32_t primask) { __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory"); }

static inline void nvic_enable(unsigned irq, uint8_t priority) {
  NVIC_IPR(irq) = priority;
  NVIC_ISER0 = 1u << irq;
}

#endif  // TINYML_EMULATOR_MPS2_AN386_H_
