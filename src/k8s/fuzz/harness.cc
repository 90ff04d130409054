#include "k8s/fuzz/harness.h"

#include <memory>

#include "k8s/client/client_config.h"
#include "k8s/client/http_kube_client.h"
#include "k8s/extender/extender.h"
#include "k8s/extender/http_server.h"
#include "k8s/extender/pod_request.h"
#include "k8s/extender/webhook.h"
#include "sched/node_codec.h"

namespace hami::k8s::fuzz {

namespace {

// An extender with a little state and a client that cannot reach anything (bind fails fast).
struct World {
  std::unique_ptr<KubeClient> client;
  std::unique_ptr<Extender> ext;
  World() {
    ClientConfig cfg;
    cfg.server = "http://127.0.0.1:1";
    cfg.qps = 0;
    cfg.timeout_seconds = 1;
    client = HttpKubeClient::Create(cfg).value();
    ExtenderOptions o;
    o.record_events = false;
    o.bind_wait_timeout = std::chrono::milliseconds(1);
    ext = std::make_unique<Extender>(o, client.get());
    Json node = {{"metadata",
                  {{"name", "n1"},
                   {"annotations",
                    {{"hami.io/node-nvidia-register",
                      R"([{"id":"GPU-1","index":0,"count":10,"devmem":16000,"devcore":100,)"
                      R"("type":"NVIDIA-T4","numa":0,"mode":"hami-core","health":true}])"}}}}}};
    ext->UpsertNode(node);
  }
};

World& TheWorld() {
  static World* w = new World();
  return *w;
}

}  // namespace

void FuzzExtenderRequest(std::string_view data) {
  if (data.empty()) return;
  static const char* kPaths[] = {"/filter", "/prioritize", "/bind", "/webhook"};
  const char* path = kPaths[static_cast<unsigned char>(data[0]) % 4];
  std::string body(data.substr(1));
  (void)HandleRequest("POST", path, body, TheWorld().ext.get(), WebhookOptions{}, nullptr);
}

void FuzzAdmissionReview(std::string_view data) {
  Json j = Json::parse(data.begin(), data.end(), nullptr, false);
  if (j.is_discarded()) return;
  try {
    (void)ReviewAdmission(j, WebhookOptions{});
  } catch (const Json::exception&) {
    // nlohmann type errors on odd shapes are caught at the HTTP boundary (400).
  }
}

void FuzzWatchEvent(std::string_view data) { (void)ParseWatchEvent(data); }

void FuzzQuantity(std::string_view data) { (void)ParseQuantity(Json(std::string(data))); }

void FuzzPodAnnotations(std::string_view data) {
  // "<to-allocate>\n<allocated>\n<register>"
  std::string s(data);
  auto a = s.find('\n');
  auto b = a == std::string::npos ? std::string::npos : s.find('\n', a + 1);
  std::string first = s.substr(0, a);
  std::string second = a == std::string::npos ? "" : s.substr(a + 1, b - a - 1);
  std::string third = b == std::string::npos ? "" : s.substr(b + 1);
  Json pod = {{"metadata",
               {{"name", "p"},
                {"namespace", "ns"},
                {"uid", "u1"},
                {"annotations",
                 {{"hami.io/vgpu-devices-to-allocate", first},
                  {"hami.io/vgpu-devices-allocated", second},
                  {"hami.io/vgpu-node", "n1"},
                  {"hami.io/bind-phase", "success"}}}}},
              {"spec", {{"nodeName", "n1"}, {"containers", Json::array({Json::object()})}}}};
  (void)PlacementFromPod(pod);
  TheWorld().ext->UpsertPod(pod);
  TheWorld().ext->DeletePod(pod);
  (void)sched::DecodeNodeRegister(third);
}

void FuzzKubeconfig(std::string_view data) {
  (void)ParseKubeconfig(std::string(data), "/nonexistent");
}

}  // namespace hami::k8s::fuzz
