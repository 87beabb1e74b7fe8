// Stand-in for the nRF5 SDK's hal/nrf_i2s.h (and the CMSIS NVIC calls that the mbed core brings
// along), so that Arduino_TensorFlowLite's peripherals/i2s_nrf52840.cpp compiles when the emulated
// board builds every file of the library, as the Arduino builder does.
//
// Declarations only, on purpose: the emulated board has no I2S peripheral. No firmware of ours
// uses the library's audio-HAT driver, so --gc-sections drops that code and these names are never
// linked; a firmware that did use it fails to link ("undefined reference to nrf_i2s_..."),
// instead of running against a peripheral that is not there.
#ifndef TINYML_EMULATOR_HAL_NRF_I2S_H_
#define TINYML_EMULATOR_HAL_NRF_I2S_H_

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  struct {
    volatile uint32_t TXEN;
    volatile uint32_t RXEN;
  } CONFIG;
} NRF_I2S_Type;

extern NRF_I2S_Type* const NRF_I2S;
#define NRF_I2S_BASE 0x40025000UL  // the nRF52840's I2S block (its errata 194 fix writes there)

typedef enum { NRF_I2S_TASK_START, NRF_I2S_TASK_STOP } nrf_i2s_task_t;
typedef enum { NRF_I2S_EVENT_RXPTRUPD, NRF_I2S_EVENT_TXPTRUPD, NRF_I2S_EVENT_STOPPED } nrf_i2s_event_t;
typedef enum { NRF_I2S_MODE_MASTER, NRF_I2S_MODE_SLAVE } nrf_i2s_mode_t;
typedef enum { NRF_I2S_FORMAT_I2S, NRF_I2S_FORMAT_ALIGNED } nrf_i2s_format_t;
typedef enum { NRF_I2S_ALIGN_LEFT, NRF_I2S_ALIGN_RIGHT } nrf_i2s_align_t;
typedef enum { NRF_I2S_SWIDTH_8BIT, NRF_I2S_SWIDTH_16BIT, NRF_I2S_SWIDTH_24BIT } nrf_i2s_swidth_t;
typedef enum { NRF_I2S_CHANNELS_STEREO, NRF_I2S_CHANNELS_LEFT, NRF_I2S_CHANNELS_RIGHT } nrf_i2s_channels_t;
typedef enum { NRF_I2S_MCK_DISABLED } nrf_i2s_mck_t;
typedef enum { NRF_I2S_RATIO_32X } nrf_i2s_ratio_t;

#define NRF_I2S_PIN_NOT_CONNECTED 0xFFFFFFFFu
#define NRF_I2S_INT_RXPTRUPD_MASK (1u << 1)
#define NRF_I2S_INT_STOPPED_MASK (1u << 2)
#define NRF_I2S_INT_TXPTRUPD_MASK (1u << 5)

void nrf_i2s_enable(NRF_I2S_Type* reg);
void nrf_i2s_task_trigger(NRF_I2S_Type* reg, nrf_i2s_task_t task);
void nrf_i2s_event_clear(NRF_I2S_Type* reg, nrf_i2s_event_t event);
bool nrf_i2s_event_check(NRF_I2S_Type const* reg, nrf_i2s_event_t event);
void nrf_i2s_int_enable(NRF_I2S_Type* reg, uint32_t mask);
void nrf_i2s_pins_set(NRF_I2S_Type* reg, uint32_t sck_pin, uint32_t lrck_pin, uint32_t mck_pin, uint32_t sdout_pin,
                      uint32_t sdin_pin);
bool nrf_i2s_configure(NRF_I2S_Type* reg, nrf_i2s_mode_t mode, nrf_i2s_format_t format, nrf_i2s_align_t alignment,
                       nrf_i2s_swidth_t sample_width, nrf_i2s_channels_t channels, nrf_i2s_mck_t mck_setup,
                       nrf_i2s_ratio_t ratio);
void nrf_i2s_transfer_set(NRF_I2S_Type* reg, uint16_t size, uint32_t* rx_buffer, uint32_t const* tx_buffer);
void nrf_i2s_rx_buffer_set(NRF_I2S_Type* reg, uint32_t* buffer);
void nrf_i2s_tx_buffer_set(NRF_I2S_Type* reg, uint32_t const* buffer);

// CMSIS-Core, as the mbed core's Arduino.h provides it on the nRF52840.
typedef enum { I2S_IRQn = 37 } IRQn_Type;
void NVIC_SetVector(IRQn_Type irq, uint32_t vector);
void NVIC_SetPriority(IRQn_Type irq, uint32_t priority);
void NVIC_ClearPendingIRQ(IRQn_Type irq);
void NVIC_EnableIRQ(IRQn_Type irq);
void NVIC_DisableIRQ(IRQn_Type irq);

#endif  // TINYML_EMULATOR_HAL_NRF_I2S_H_
