// The `hami` command line (CLI11): serve, run, ps, top, gpus (alias nodes), queue, release.
// main.cc only calls RunCli.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "hostd/gpu_source.h"

namespace hami::hostd {

int RunCli(int argc, char** argv);

// "16g,16g" -> in-memory GPUs GPU-00000000-0000-4000-8000-00000000000<i> named "Static Fake
// GPU" (for demos and tests without any driver). Errors: kInvalidArgument naming the item.
StatusOr<std::unique_ptr<GpuSource>> StaticGpuSource(const std::string& spec);

}  // namespace hami::hostd
