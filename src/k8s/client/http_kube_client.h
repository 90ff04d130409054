// KubeClient over HTTP(S) with cpp-httplib: a small pool of keep-alive connections, bearer
// token or client-certificate auth, the CA from the kubeconfig, a client-side token bucket.
// Watches use their own connection so they never block requests.
#pragma once

#include <memory>

#include "k8s/client/client_config.h"
#include "k8s/client/kube_client.h"

namespace hami::k8s {

class HttpKubeClient : public KubeClient {
 public:
  // Errors: kInvalidArgument for a malformed server URL or unreadable certificate/key PEM.
  static StatusOr<std::unique_ptr<HttpKubeClient>> Create(const ClientConfig& config);
  ~HttpKubeClient() override;

  StatusOr<Json> Get(const Resource& r, const std::string& ns, const std::string& name) override;
  StatusOr<ObjectList> List(const Resource& r, const ListOptions& opts) override;
  Status Watch(const Resource& r, const ListOptions& opts,
               const std::function<bool(const WatchEvent&)>& on_event,
               CancelToken* cancel) override;
  StatusOr<Json> Create(const Resource& r, const std::string& ns, const Json& obj) override;
  StatusOr<Json> Update(const Resource& r, const std::string& ns, const Json& obj) override;
  StatusOr<Json> Patch(const Resource& r, const std::string& ns, const std::string& name,
                       PatchType type, const Json& patch) override;
  Status Delete(const Resource& r, const std::string& ns, const std::string& name) override;
  Status Bind(const std::string& ns, const std::string& name, const std::string& uid,
              const std::string& node) override;

  // Requests sent (including retries), for tests and metrics.
  uint64_t request_count() const;

  struct Impl;

 private:
  explicit HttpKubeClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Percent-encodes a query parameter value.
std::string UrlEncode(std::string_view s);
// "?a=1&b=2" from the options that are set (watch adds watch=true).
std::string ListQuery(const ListOptions& opts, bool watch, const std::string& continue_token);

}  // namespace hami::k8s
