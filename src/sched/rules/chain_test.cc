#include "sched/rules/chain.h"

#include <gtest/gtest.h>

#include "sched/rules/rule_test_util.h"

namespace hami::sched::rules {
namespace {

using namespace testing;  // NOLINT

// One GPU of type "NVIDIA-Tesla T4", mode mig, UUID GPU-0.
internal::NodeEntry OneGpuNode(bool healthy) {
  internal::NodeEntry n;
  GpuInfo info;
  info.uuid = "GPU-0";
  info.type = "NVIDIA-Tesla T4";
  n.info.gpus.push_back(info);
  auto g = Slot();
  g.healthy = healthy;
  g.mode = VgpuMode::kMig;
  n.gpus.push_back(g);
  n.types_lower.push_back("nvidia-tesla t4");
  return n;
}

PodOptions Opts(std::vector<std::string> use_types, std::vector<std::string> use_uuids,
                std::vector<std::string> nouse_uuids, std::optional<VgpuMode> mode) {
  PodOptions o;
  o.use_types = std::move(use_types);
  o.use_uuids = std::move(use_uuids);
  o.nouse_uuids = std::move(nouse_uuids);
  o.mode = mode;
  return o;
}

// The first selector that rejects names the reason; health comes last.
TEST(RuleChain, SelectorOrder) {
  struct Case {
    const char* name;
    PodOptions options;
    bool healthy;
    Reason want;
  } cases[] = {
      {"no selectors, healthy", {}, true, Reason::kFits},
      {"no selectors, unhealthy", {}, false, Reason::kUnhealthy},
      {"mode before type", Opts({"a100"}, {}, {}, VgpuMode::kMps), true, Reason::kModeMismatch},
      {"type before uuid", Opts({"a100"}, {"GPU-9"}, {}, VgpuMode::kMig), true,
       Reason::kTypeNotIncluded},
      {"uuid before health", Opts({}, {}, {"GPU-0"}, std::nullopt), false, Reason::kUuidExcluded},
      {"all selectors pass, unhealthy", Opts({"t4"}, {"GPU-0"}, {}, VgpuMode::kMig), false,
       Reason::kUnhealthy},
  };
  for (const Case& c : cases) {
    ResolvedPod pod;
    pod.options = c.options;
    internal::PodCtx ctx = internal::MakeCtx(pod);
    EXPECT_EQ(SelectorCheck(OneGpuNode(c.healthy), 0, ctx), c.want) << c.name;
  }
}

// Exclusive, Slots, Memory, Cores: the first that rejects names the reason.
TEST(RuleChain, CapacityOrder) {
  struct Case {
    const char* name;
    internal::GpuSlot gpu;
    GpuUsage used;
    ResolvedContainer req;
    Reason want;
  } cases[] = {
      {"fits", Slot(), Use(), Req(1000, 10), Reason::kFits},
      {"held card before slots", Slot(10000, 100, 1), Use(10000, 100, 1, 1), Req(1000),
       Reason::kCardExclusive},
      {"slots before memory", Slot(10000, 100, 1), Use(10000, 0, 1), Req(1000),
       Reason::kNoFreeSlot},
      {"memory before cores", Slot(), Use(9500, 100, 1), Req(1000, 10),
       Reason::kInsufficientMemory},
      {"cores last", Slot(), Use(0, 95, 1), Req(1000, 10), Reason::kInsufficientCores},
  };
  for (const Case& c : cases) EXPECT_EQ(CapacityCheck(c.gpu, c.used, c.req), c.want) << c.name;
}

}  // namespace
}  // namespace hami::sched::rules
