// The capture app: the seam between the firmware's main loop and the lab's logic.
#ifndef TINYML_APP_H_
#define TINYML_APP_H_

#include "model_runner.h"
#include "protocol_server.h"

void app_setup(tinyml::ProtocolServer& server, tinyml::ModelRunner& runner);
void app_loop(tinyml::ProtocolServer& server, tinyml::ModelRunner& runner);

#endif  // TINYML_APP_H_
