// The PDM library's API as the kws and capture apps use it (ArduinoCore-mbed libraries/PDM).
#ifndef TINYML_TEST_PDM_H_
#define TINYML_TEST_PDM_H_

class PDMClass {
 public:
  int begin(int channels, int sample_rate);
  void onReceive(void (*function)(void));
  int available();
  int read(void* buffer, size_t size);
};
extern PDMClass PDM;

#endif  // TINYML_TEST_PDM_H_
