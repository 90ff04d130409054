// `hami`: single-host GPU slicing (see docs/single-host.md).
#include "hostd/cli.h"

int main(int argc, char** argv) { return hami::hostd::RunCli(argc, argv); }
