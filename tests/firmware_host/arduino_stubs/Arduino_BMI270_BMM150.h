#include "imu_stub.h"
