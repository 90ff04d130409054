// Devices of the fake GPU driver: parsed from the FAKEGPU_CONFIG file (one device per line)
// or the documented default of two 16 GiB cards. Shared by libcuda.so.1, libnvidia-ml.so.1
// and fakegpu-ctl so every view of a state file agrees on the hardware.
#pragma once

#include <stdint.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace hami::fakegpu {

inline constexpr int kMaxDevices = 16;
inline constexpr int kMaxMigDevices = 7;  // per GPU, as on an A100/H100

// One MIG device of a GPU in MIG mode ("migs=1g.10gb:7:0,..."): profile, GPU and compute
// instance IDs.
struct MigConfig {
  std::string profile;
  unsigned gpu_instance = 0, compute_instance = 0;
};

struct DeviceConfig {
  std::string uuid;  // "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
  unsigned char uuid_bytes[16] = {};
  std::string name = "Tesla V100-SXM2-16GB";
  uint64_t mem_bytes = 16ull << 30;
  uint64_t ctx_mem = 300ull << 20;  // charged per context
  uint64_t reserved = 4ull << 20;   // NVML "reserved" (driver/firmware), NVML only
  int sms = 80;
  int cc_major = 7, cc_minor = 0;
  unsigned pci_domain = 0, pci_bus = 0, pci_device = 0, pci_function = 0;
  unsigned pci_device_id = 0x1DB110DE;
  int numa = 0;
  bool mig_supported = false;   // false: nvmlDeviceGetMigMode says NOT_SUPPORTED
  std::vector<MigConfig> migs;  // non-empty: MIG mode on with these devices
  unsigned temperature_c = 35;  // nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU)
  unsigned power_mw = 45000;    // nvmlDeviceGetPowerUsage (milliwatts)
  bool ecc_supported = true;    // false: nvmlDeviceGetTotalEccErrors says NOT_SUPPORTED
  uint64_t ecc_corrected = 0, ecc_uncorrected = 0;  // lifetime aggregate counts
};

struct Config {
  std::vector<DeviceConfig> devices;
};

// "80g", "300m", "4Gi", "512MiB", "1048576" (powers of 1024). Errors name the value.
StatusOr<uint64_t> ParseSize(std::string_view text);
// "GPU-8-4-4-4-12" hex form into 16 bytes; false when malformed.
bool ParseUuid(std::string_view text, unsigned char out[16]);
// Whole config file text. Errors name the line and the problem.
StatusOr<Config> ParseConfig(std::string_view text);
// The default config: two 16 GiB devices (see README.md).
Config DefaultConfig();
// CUDA ordinal -> config index for a CUDA_VISIBLE_DEVICES value, as the real driver reads
// it: comma list of indices or UUIDs ("GPU-..."; a unique prefix is enough); the list ends
// at the first invalid, unknown, ambiguous or repeated entry.
std::vector<int> ParseVisibleDevices(std::string_view value, const Config& cfg);
// FAKEGPU_CONFIG when set (unreadable or malformed file is an error), else DefaultConfig().
StatusOr<Config> LoadConfig();

}  // namespace hami::fakegpu
