#include "k8s/extender/config.h"

#include <gtest/gtest.h>

namespace hami::k8s {
namespace {

std::optional<SchedulerFlags> Parse(std::vector<std::string> args, int* code = nullptr) {
  args.insert(args.begin(), "hami-scheduler");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  int exit_code = 0;
  auto f = ParseFlags(static_cast<int>(argv.size()), argv.data(), exit_code);
  if (code) *code = exit_code;
  return f;
}

// The arguments HAMi's chart (templates/scheduler/deployment.yaml) passes to its extender, plus
// its default extraArgs (--debug, -v=4): the binary starts with them.
TEST(SchedulerFlags, AcceptsHamiChartArguments) {
  auto f = Parse({"--http_bind=0.0.0.0:443",
                  "--cert_file=/tls/tls.crt",
                  "--key_file=/tls/tls.key",
                  "--scheduler-name=hami-scheduler",
                  "--metrics-bind-address=:9395",
                  "--node-scheduler-policy=binpack",
                  "--gpu-scheduler-policy=spread",
                  "--force-overwrite-default-scheduler=true",
                  "--device-config-file=/device-config.yaml",
                  "--enable-ascend=true",
                  "--node-label-selector=gpu=on,zone=a",
                  "--leader-elect",
                  "--debug",
                  "-v=4",
                  "--kube-qps",
                  "50",
                  "--kube-burst=100",
                  "--kube-timeout=20",
                  "--profiling",
                  "--logtostderr=true",
                  "--resource-name",
                  "nvidia.com/gpu"});
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->http_bind, "0.0.0.0:443");
  EXPECT_EQ(f->metrics_bind_address, ":9395");
  EXPECT_TRUE(f->force_overwrite_default_scheduler);
  EXPECT_TRUE(f->leader_elect);
  EXPECT_TRUE(f->debug);
  EXPECT_EQ(f->verbosity, 4);
  EXPECT_DOUBLE_EQ(f->kube_qps, 50);
  EXPECT_EQ(f->kube_burst, 100);
  EXPECT_EQ(f->kube_timeout_s, 20);
  EXPECT_EQ(f->ignored_hami_flags,
            (std::vector<std::string>{"--enable-ascend=true", "--node-label-selector=gpu=on,zone=a",
                                      "--profiling", "--logtostderr=true",
                                      "--resource-name=nvidia.com/gpu"}));
  auto c = BuildConfig(*f, "");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->metrics_host, "0.0.0.0");
  EXPECT_EQ(c->metrics_port, 9395);
  EXPECT_EQ(c->client.timeout_seconds, 20);
}

TEST(SchedulerFlags, UnknownFlagsStillFail) {
  int code = 0;
  EXPECT_FALSE(Parse({"--no-such-flag=1"}, &code).has_value());
  EXPECT_EQ(code, 2);
}

// Every number is checked: out of range and non-finite values are named errors.
TEST(SchedulerConfig, RejectsBadNumbers) {
  struct Case {
    std::vector<std::string> args;
    const char* want;  // substring of the error
  } cases[] = {
      {{"--kube-api-qps", "-1"}, "--kube-api-qps"},
      {{"--kube-api-qps", "nan"}, "--kube-api-qps"},
      {{"--kube-api-qps", "inf"}, "--kube-api-qps"},
      {{"--kube-api-burst", "0"}, "--kube-api-burst"},
      {{"--kube-timeout", "-5"}, "--kube-api-timeout"},
      {{"--max-connections", "0"}, "--max-connections"},
      {{"--threads", "100000"}, "--max-connections"},
      {{"--http-request-timeout-ms", "1"}, "--http-request-timeout-ms"},
      {{"--http-max-body-bytes", "10"}, "--http-max-body-bytes"},
      {{"--allocate-timeout-ms", "0"}, "--allocate-timeout-ms"},
      {{"--default-cores", "101"}, "--default-cores"},
      {{"--default-gpu", "0"}, "--default-gpu"},
      {{"--default-mem", "-1"}, "--default-mem"},
      {{"--http_bind", "127.0.0.1:99999"}, "--http_bind"},
      {{"--http_bind", ":abc"}, "--http_bind"},
      {{"--http_bind", "nohostport"}, "--http_bind"},
      {{"--metrics-bind-address", ":-1"}, "--metrics-bind-address"},
      {{"--scheduler-name", ""}, "--scheduler-name"},
      {{"--cert_file", "/x"}, "--cert_file"},
  };
  for (const Case& c : cases) {
    auto f = Parse(c.args);
    ASSERT_TRUE(f.has_value()) << c.args[0];
    auto cfg = BuildConfig(*f, "");
    ASSERT_FALSE(cfg.ok()) << c.args[0] << " " << c.args[1];
    EXPECT_NE(cfg.status().message().find(c.want), std::string::npos) << cfg.status().message();
  }
}

// A device config of the wrong shape is an error, never an exception past BuildConfig.
TEST(SchedulerConfig, MalformedDeviceConfigIsANamedError) {
  SchedulerFlags f;
  for (const char* yaml :
       {"nvidia: 3", "nodeconfig: 5", "nodeconfig:\n  - name: a\n    filterdevices: 3",
        "nvidia:\n  deviceMemoryScaling: .nan", "[", "nvidia:\n  memoryFactor: .inf"}) {
    StatusOr<SchedulerConfig> c = InvalidArgument("unset");
    EXPECT_NO_THROW(c = BuildConfig(f, yaml)) << yaml;
    EXPECT_FALSE(c.ok()) << yaml;
  }
}

}  // namespace
}  // namespace hami::k8s
