// hami-device-plugin: flags, then the library (cli.h) until SIGTERM.
#include <iostream>

#include "common/log.h"
#include "deviceplugin/cli.h"

int main(int argc, char** argv) {
  hami::log::Init("hami-device-plugin");
  int exit_code = 0;
  auto flags = hami::deviceplugin::ParseFlags(argc, argv, exit_code);
  if (!flags) return exit_code;
  return hami::deviceplugin::Run(*flags, std::cout);
}
