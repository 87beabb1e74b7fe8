// The IMU API shared by Arduino_LSM9DS1, Arduino_BMI270_BMM150 and Arduino_LSM6DSOX.
#ifndef TINYML_TEST_IMU_STUB_H_
#define TINYML_TEST_IMU_STUB_H_

class IMUClass {
 public:
  int begin();
  int accelerationAvailable();
  int gyroscopeAvailable();
  int readAcceleration(float& x, float& y, float& z);
  int readGyroscope(float& x, float& y, float& z);
};
extern IMUClass IMU;

#endif  // TINYML_TEST_IMU_STUB_H_
