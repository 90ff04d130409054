// HAMi's admission reviews and extender requests replayed through this project's HTTP handling
// (HandleRequest: the same function the server calls for every request body), the webhook and
// the extender over the API-server double. Rows: testdata/{admission,extender}.json.
#include <gtest/gtest.h>

#include <chrono>

#include "compat_util.h"
#include "k8s/client/base64.h"
#include "k8s/client/http_kube_client.h"
#include "k8s/extender/extender.h"
#include "k8s/extender/http_server.h"
#include "k8s/extender/webhook.h"
#include "k8s/testing/fake_apiserver.h"
#include "sched/annotation.h"

namespace hami::compat {
namespace {

using namespace std::chrono_literals;

// ---- 4. admission reviews ----------------------------------------------------------------

k8s::WebhookOptions WebhookFrom(const Json& o) {
  k8s::WebhookOptions w;
  if (o.contains("names")) {
    w.names.count = o["names"]["count"].get<std::string>();
    w.names.memory = o["names"]["memory"].get<std::string>();
    w.names.memory_percentage = o["names"]["memory_percentage"].get<std::string>();
    w.names.cores = o["names"]["cores"].get<std::string>();
  }
  w.force_overwrite_default_scheduler = o.value("force_overwrite_default_scheduler", true);
  return w;
}

class AdmissionReview : public ::testing::TestWithParam<Sample> {};

TEST_P(AdmissionReview, WebhookAnswersAsHamiDoes) {
  const Sample& s = GetParam();
  HAMI_COMPAT_LOADED(s);
  CheckDiffers(s);
  const Json& pod = s.data["pod"];
  // The request as HAMi's tests build it (admission.Request{UID, Namespace, Name, Object}).
  Json review = {{"apiVersion", "admission.k8s.io/v1"},
                 {"kind", "AdmissionReview"},
                 {"request",
                  {{"uid", s.data["uid"]},
                   {"namespace", pod["metadata"]["namespace"]},
                   {"name", pod["metadata"]["name"]},
                   {"object", pod}}}};
  if (!s.data.value("as_in_hami_test", false)) {  // as kube-apiserver sends it
    review["request"]["kind"] = {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}};
    review["request"]["operation"] = "CREATE";
  }
  k8s::HttpReply reply = k8s::HandleRequest("POST", "/webhook", review.dump(), nullptr,
                                            WebhookFrom(s.data["options"]), nullptr);
  ASSERT_EQ(reply.status, 200) << Where(s) << ": " << reply.body;
  Json out = Json::parse(reply.body, nullptr, false);
  ASSERT_TRUE(out.is_object()) << reply.body;
  const Json& resp = out["response"];
  EXPECT_EQ(resp["uid"], s.data["uid"]) << Where(s);
  const Json& want = s.data["expect"];
  ASSERT_EQ(resp["allowed"].get<bool>(), want["allowed"].get<bool>())
      << Where(s) << ": " << resp.dump();
  Json patch = Json::array();
  if (resp.contains("patch")) {
    auto text = k8s::Base64Decode(resp["patch"].get<std::string>());
    ASSERT_TRUE(text.ok());
    patch = Json::parse(*text);
  }
  if (want.value("no_patch", false)) {
    EXPECT_TRUE(patch.empty()) << Where(s) << ": " << patch;
  }
  if (want.contains("message_contains")) {
    std::string msg = resp.contains("status") ? resp["status"].value("message", "") : "";
    EXPECT_NE(msg.find(want["message_contains"].get<std::string>()), std::string::npos)
        << Where(s) << ": " << msg;
  }
  if (want.contains("scheduler_name")) {
    Json patched = pod.patch(patch);
    EXPECT_EQ(patched["spec"].value("schedulerName", ""), want["scheduler_name"]) << Where(s);
  }
  for (const Json& prefix : want.value("patch_path_prefixes", Json::array())) {
    bool found = false;
    for (const Json& op : patch) {
      found = found || op["path"].get<std::string>().rfind(prefix.get<std::string>(), 0) == 0;
    }
    EXPECT_TRUE(found) << Where(s) << ": no patch under " << prefix << " in " << patch;
  }
}

INSTANTIATE_TEST_SUITE_P(Hami, AdmissionReview,
                         ::testing::ValuesIn(LoadTable("admission.json", "review")),
                         [](const auto& i) { return ParamName(i.param); });

// ---- 3. extender requests ----------------------------------------------------------------

Json Node(const Json& n) {
  Json node = {{"apiVersion", "v1"},
               {"kind", "Node"},
               {"metadata", {{"name", n["name"]}, {"annotations", Json::object()}}},
               {"status", {{"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
  if (n.contains("register")) {
    node["metadata"]["annotations"]["hami.io/node-nvidia-register"] = n["register"];
  }
  return node;
}

class ExtenderRequest : public ::testing::TestWithParam<Sample> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    k8s::ClientConfig cfg = api_.client_config();
    client_ = k8s::HttpKubeClient::Create(cfg).value();
    opts_.reaper_interval = 20ms;
  }
  void TearDown() override {
    ext_.reset();
    client_.reset();
    api_.Stop();
  }
  k8s::testing::FakeApiServer api_;
  std::unique_ptr<k8s::HttpKubeClient> client_;
  k8s::ExtenderOptions opts_;
  std::unique_ptr<k8s::Extender> ext_;
};

TEST_P(ExtenderRequest, AnswersInTheShapeKubeSchedulerReads) {
  const Sample& s = GetParam();
  HAMI_COMPAT_LOADED(s);
  CheckDiffers(s);
  for (const Json& n : s.data.value("nodes", Json::array())) {
    ASSERT_TRUE(api_.Create("nodes", Node(n)).ok());
  }
  std::string body = s.data["body"].get<std::string>();
  std::string pod_name;
  if (s.data.contains("create_pod")) {
    auto created = api_.Create("pods", s.data["create_pod"]);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    pod_name = (*created)["metadata"]["name"].get<std::string>();
    std::string uid = (*created)["metadata"]["uid"].get<std::string>();
    body.replace(body.find("$UID"), 4, uid);
  }
  ext_ = std::make_unique<k8s::Extender>(opts_, client_.get());
  ext_->Start();
  ASSERT_TRUE(ext_->WaitReady(5s));
  k8s::HttpReply reply = k8s::HandleRequest("POST", s.data["path"].get<std::string>(), body,
                                            ext_.get(), k8s::WebhookOptions{}, nullptr);
  const Json& want = s.data["expect"];
  EXPECT_EQ(reply.status, want["status"].get<int>()) << Where(s) << ": " << reply.body;
  Json out = Json::parse(reply.body, nullptr, false);
  ASSERT_TRUE(out.is_object()) << Where(s) << ": " << reply.body;
  // kube-scheduler decodes with Go's encoding/json: keys match ignoring case, absent = empty.
  const Json* err = GoField(out, "error");
  std::string error = err && err->is_string() ? err->get<std::string>() : "";
  if (want.value("error_nonempty", false)) {
    EXPECT_FALSE(error.empty()) << Where(s);
  }
  if (want.contains("error")) {
    EXPECT_EQ(error, want["error"].get<std::string>()) << Where(s);
  }
  if (want.contains("nodenames")) {
    const Json* names = GoField(out, "nodenames");
    Json got = names && names->is_array() ? *names : Json::array();
    EXPECT_EQ(got, want["nodenames"]) << Where(s) << ": " << reply.body;
  }
  for (const Json& n : want.value("failed", Json::array())) {
    const Json* f = GoField(out, "failedNodes");
    const Json* u = GoField(out, "failedAndUnresolvableNodes");
    bool listed = (f && f->contains(n)) || (u && u->contains(n));
    EXPECT_TRUE(listed) << Where(s) << ": " << n << " not among the failed nodes: " << reply.body;
  }
  if (want.contains("to_allocate")) {
    auto pod = api_.Get("pods", "default", pod_name);
    ASSERT_TRUE(pod.ok());
    const Json& annos = (*pod)["metadata"]["annotations"];
    ASSERT_TRUE(annos.contains(sched::kDevicesToAllocateAnnotation)) << pod->dump();
    // HAMi's device plugin reads it with its own rules: UUID, type, memory, cores per device.
    auto placed =
        sched::DecodePlacement(annos[sched::kDevicesToAllocateAnnotation].get<std::string>(), 0);
    ASSERT_TRUE(placed.ok()) << placed.status().ToString();
    const Json& wc = want["to_allocate"];
    ASSERT_EQ(placed->containers.size(), wc.size()) << Where(s);
    for (std::size_t c = 0; c < wc.size(); ++c) {
      ASSERT_EQ(placed->containers[c].size(), wc[c].size()) << Where(s);
      for (std::size_t d = 0; d < wc[c].size(); ++d) {
        EXPECT_EQ(placed->containers[c][d].uuid, wc[c][d][0].get<std::string>());
        EXPECT_EQ(placed->containers[c][d].used_mem_mib, wc[c][d][1].get<int64_t>());
        EXPECT_EQ(placed->containers[c][d].used_cores, wc[c][d][2].get<int32_t>());
        if (wc[c][d].size() > 3) {
          EXPECT_EQ(placed->containers[c][d].type, wc[c][d][3].get<std::string>()) << Where(s);
        }
      }
    }
    EXPECT_EQ((*pod)["spec"].value("nodeName", ""), "node-01") << "the binding was not written";
  }
}

INSTANTIATE_TEST_SUITE_P(Hami, ExtenderRequest,
                         ::testing::ValuesIn(LoadTable("extender.json", "request")),
                         [](const auto& i) { return ParamName(i.param); });

}  // namespace
}  // namespace hami::compat
