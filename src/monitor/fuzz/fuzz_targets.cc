#include "monitor/fuzz/fuzz_targets.h"

#include <cstdlib>
#include <string>

#include "common/accounting_reader.h"
#include "monitor/collector.h"

namespace hami::monitor::fuzz {

void AccountingFile(const uint8_t* data, size_t size) {
  auto s = accounting::ParseAnyAccounting(data, size);  // ours and HAMi-core's region
  if (!s.ok()) return;
  if (s->devices.size() > 16) std::abort();
  for (const auto& d : s->devices) {
    if (d.uuid.empty() || d.uuid.size() >= 96) std::abort();
  }
}

void PodMeta(const uint8_t* data, size_t size) {
  auto v = ParsePodMeta(std::string(reinterpret_cast<const char*>(data), size));
  (void)v;
}

}  // namespace hami::monitor::fuzz
