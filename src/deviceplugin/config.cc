// Reading the device plugin's configuration files (config.h).
#include "deviceplugin/config.h"

#include "common/file_reader.h"

namespace hami::deviceplugin {

StatusOr<std::string> ReadFile(const std::string& path) {
  // ConfigMaps are mounted as links (config.yaml -> ..data/config.yaml): follow them, but never
  // block on a FIFO or read without bound.
  common::ReadFileOptions o;
  o.follow_links = true;
  return common::ReadFileBounded(path, kMaxConfigBytes, o);
}

}  // namespace hami::deviceplugin
