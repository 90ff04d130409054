// The web UI's view of a Kubernetes cluster (docs/webui.md): nodes' GPUs and the placements the
// scheduler wrote on pods, kept in a sched::ClusterState from node and pod watches (the same
// annotations and codecs the extender reads), pending GPU pods with the engine's reason, and
// live use scraped from the node monitors' /metrics in the background.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "k8s/client/kube_client.h"
#include "k8s/client/reflector.h"
#include "k8s/extender/pod_request.h"
#include "sched/engine.h"
#include "sched/quota.h"
#include "webui/model.h"
#include "webui/prom_scrape.h"

namespace hami::k8s {

struct ClusterSourceOptions {
  ResourceNames names;
  double memory_factor = 1;
  sched::SchedulerConfig sched;
  std::string scheduler_name = "hami-scheduler";
  // Node monitors: http://<node InternalIP>:<monitor_port>/metrics for every GPU node when
  // monitor_port > 0, plus these fixed URLs (a monitor Service, tests).
  int monitor_port = 0;
  // "key=value": the monitors are the pods with this label (the device plugin DaemonSet's), at
  // their pod IPs; empty: at the nodes' InternalIPs (hostNetwork or hostPort monitors).
  std::string monitor_pod_label;
  std::vector<std::string> monitor_urls;
  std::chrono::milliseconds scrape_interval{10000};
  webui::ScrapeOptions scrape;
  // Pending pods whose reason is recomputed per collection at most (each is one engine filter
  // over every node); a reason is reused for reason_ttl.
  size_t reasons_per_collect = 50;
  std::chrono::milliseconds reason_ttl{10000};
  // HAMi's GPU quotas (ExtenderOptions::quotas): watch ResourceQuotas, show them with their
  // usage, and name a quota as the reason a pending pod waits.
  bool quotas = true;
};

class ClusterWebUiSource : public webui::DataProvider {
 public:
  ClusterWebUiSource(ClusterSourceOptions options, KubeClient* client);
  ~ClusterWebUiSource() override;  // Stops.

  void Start();  // watches nodes and pods; scrapes monitors
  void Stop();
  bool WaitReady(std::chrono::milliseconds timeout);

  webui::Snapshot Collect() override;

  // Cluster events (the reflectors call these; tests may too).
  void UpsertNode(const Json& node);
  void DeleteNode(const Json& node);
  void UpsertPod(const Json& pod);
  void DeletePod(const Json& pod);
  void UpsertQuota(const Json& quota);  // a ResourceQuota
  void DeleteQuota(const Json& quota);
  // Replaces the live use (the scraper calls it; tests may too).
  void SetUsage(webui::MonitorUsage usage);

 private:
  struct PlacedPod {
    std::string ns, name, node, phase;
    int64_t created_unix = 0;
    sched::PodPlacement placement;
  };
  struct PendingPod {
    std::string ns, name;
    int64_t created_unix = 0;
    sched::PodRequest request;
    bool valid = false;  // the request parsed
    bool quota = false;  // the reason is its namespace's quota
    std::string reason;
    std::chrono::steady_clock::time_point reason_at{};
  };
  void ScrapeLoop();
  std::vector<std::string> MonitorUrls() const;
  void FillPending(webui::Snapshot& snap);
  void FillQuotas(webui::Snapshot& snap) const;

  ClusterSourceOptions opts_;
  KubeClient* client_;
  sched::Engine engine_;

  mutable std::mutex mu_;
  sched::ClusterState state_;
  std::map<std::string, std::string> node_address_;    // node -> InternalIP
  std::map<std::string, std::string> monitor_pods_;    // monitor pod uid -> pod IP
  std::unordered_map<std::string, PlacedPod> placed_;  // uid ->
  std::map<std::string, PendingPod> pending_;          // uid -> (ordered for stable pages)
  webui::MonitorUsage usage_;
  // The namespaces' quotas and what placed pods hold against them, kept from the same objects
  // and by the same rules as the extender's book (so also rebuilt from pods after a restart).
  sched::QuotaBook quotas_{"namespace"};

  std::unique_ptr<Reflector> nodes_, pods_, quota_objects_;
  std::thread scraper_;
  std::mutex scrape_mu_;
  std::condition_variable scrape_cv_;
  bool stop_ = false;
};

}  // namespace hami::k8s
