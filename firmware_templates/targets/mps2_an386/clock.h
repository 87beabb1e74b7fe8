// The emulated board's time base (millis, micros, delay: declared in <Arduino.h>).
#ifndef TINYML_EMULATOR_CLOCK_H_
#define TINYML_EMULATOR_CLOCK_H_

#ifdef __cplusplus
extern "C" {
#endif

// Starts SysTick's millisecond interrupt; micros() and millis() count from here.
void clock_begin(void);

#ifdef __cplusplus
}
#endif

#endif  // TINYML_EMULATOR_CLOCK_H_
