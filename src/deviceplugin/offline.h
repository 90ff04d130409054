// The device plugin without kubelet or a cluster: print the GPUs and the node annotation this
// machine would publish, or serve Allocate for one pod object against an in-memory API
// (--print-devices / --simulate-pod, used to check a real GPU by hand, docs/node-agents.md).
#pragma once

#include <ostream>
#include <string>

#include "common/status.h"
#include "deviceplugin/plugin_server.h"
#include "gpu/gpu.h"

namespace hami::deviceplugin {

// Writes one line per GPU and the register annotation to `out`.
// Errors: as gpu::Backend::ListGpus.
Status PrintDevices(const PluginServerOptions& opts, gpu::Backend& gpus, std::ostream& out);

// Serves Allocate for every container of the pod in `pod_json` (kubectl get pod -o json) and
// writes the responses as JSON to `out`. Errors: kInvalidArgument for a file that is not one
// pod or a malformed annotation, then as Allocator::AllocateContainer.
Status SimulatePod(const PluginServerOptions& opts, gpu::Backend& gpus,
                   const std::string& pod_json, std::ostream& out);

}  // namespace hami::deviceplugin
