// Text tables for `hami ps`, `hami gpus` and `hami top`, built from the API's JSON so the
// commands show exactly what the daemon serves.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace hami::hostd {

std::string FormatMib(int64_t mib);       // "2048 MiB" / "15.8 GiB"
std::string FormatBytes(uint64_t bytes);  // "1.2 GiB"
// `slices` as served by GET /v1/slices; now_unix for the AGE column.
std::string SlicesTable(const nlohmann::json& slices, int64_t now_unix);
// `gpus` as served by GET /v1/gpus.
std::string GpusTable(const nlohmann::json& gpus);
std::string QueueTable(const nlohmann::json& queue, int64_t now_unix);
// `quotas` as served by GET /v1/quota (`hami quota`).
std::string QuotaTable(const nlohmann::json& quotas);
// The whole `hami top` screen: header, GPUs, slices, queue.
std::string TopScreen(const nlohmann::json& info, const nlohmann::json& gpus,
                      const nlohmann::json& slices, const nlohmann::json& queue, int64_t now_unix);

}  // namespace hami::hostd
