// hami-scheduler's web UI (docs/webui.md) on a listener of its own, apart from the extender's
// port (which only kube-scheduler and the API server need to reach). Configured by environment
// so the scheduler's flag parser stays as it is:
//   HAMI_WEBUI_LISTEN=0.0.0.0:8080     enables it (unset: no web UI)
//   HAMI_WEBUI_MONITOR_PORT=9394       scrape the node monitors on this port (0: no scraping)
//   HAMI_WEBUI_MONITOR_POD_LABEL=k=v   ... at the pod IPs of the pods with this label (the device
//                                      plugin DaemonSet's); unset: at the nodes' InternalIPs
//   HAMI_WEBUI_MONITOR_URLS=u1,u2      fixed monitor URLs (e.g. a Service)
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "common/status.h"
#include "k8s/client/kube_client.h"
#include "k8s/extender/extender.h"

namespace httplib {
class Server;
}
namespace hami::webui {
class WebUi;
}

namespace hami::k8s {

class ClusterWebUiSource;

class SchedulerWebUi {
 public:
  ~SchedulerWebUi();  // Stops.
  int port() const { return port_; }
  void Stop();

  // nullptr (and OK) when HAMI_WEBUI_LISTEN is unset. Errors: kInvalidArgument naming the
  // variable and its value, kUnavailable (cannot listen).
  static StatusOr<std::unique_ptr<SchedulerWebUi>> FromEnv(KubeClient* client,
                                                           const ExtenderOptions& options);

 private:
  SchedulerWebUi() = default;
  std::unique_ptr<httplib::Server> server_;
  std::unique_ptr<webui::WebUi> ui_;
  ClusterWebUiSource* source_ = nullptr;  // owned by ui_
  std::thread thread_;
  int port_ = 0;
};

}  // namespace hami::k8s
