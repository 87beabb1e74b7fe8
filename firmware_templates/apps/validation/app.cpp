// The validation app adds nothing to the protocol server: every inference comes from the host
// (binary mode) or from a person typing `run` (human mode). Plain C++, compiled on the host too.
#include "app.h"

void app_setup(tinyml::ProtocolServer& server, tinyml::ModelRunner& runner) {
  (void)runner;
  server.print_line("tinyml validation firmware ready: type help");
}

void app_loop(tinyml::ProtocolServer& server, tinyml::ModelRunner& runner) {
  (void)server;
  (void)runner;
}
