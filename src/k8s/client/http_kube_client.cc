#include "k8s/client/http_kube_client.h"

#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <mutex>
#include <vector>

#include "k8s/client/rate_limiter.h"

namespace hami::k8s {

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string ListQuery(const ListOptions& opts, bool watch, const std::string& continue_token) {
  std::vector<std::string> q;
  if (watch) q.push_back("watch=true");
  if (!opts.label_selector.empty()) q.push_back("labelSelector=" + UrlEncode(opts.label_selector));
  if (!opts.field_selector.empty()) q.push_back("fieldSelector=" + UrlEncode(opts.field_selector));
  if (!opts.resource_version.empty() && continue_token.empty()) {
    q.push_back("resourceVersion=" + UrlEncode(opts.resource_version));
  }
  if (watch && opts.allow_bookmarks) q.push_back("allowWatchBookmarks=true");
  if (watch && opts.timeout_seconds > 0) {
    q.push_back("timeoutSeconds=" + std::to_string(opts.timeout_seconds));
  }
  if (!watch && opts.limit > 0) q.push_back("limit=" + std::to_string(opts.limit));
  if (!continue_token.empty()) q.push_back("continue=" + UrlEncode(continue_token));
  std::string out;
  for (const auto& p : q) out += (out.empty() ? "?" : "&") + p;
  return out;
}

struct HttpKubeClient::Impl {
  ClientConfig cfg;
  bool tls = false;
  std::string host;
  int port = 0;
  X509* cert = nullptr;
  EVP_PKEY* key = nullptr;
  std::unique_ptr<RateLimiter> limiter;
  std::mutex pool_mu;
  std::vector<std::unique_ptr<httplib::ClientImpl>> pool;
  std::atomic<uint64_t> requests{0};
  std::mutex token_mu;
  std::string token;
  std::chrono::steady_clock::time_point token_read{};

  ~Impl() {
    pool.clear();
    if (cert) X509_free(cert);
    if (key) EVP_PKEY_free(key);
  }

  std::unique_ptr<httplib::ClientImpl> NewClient(int read_timeout_s) {
    std::unique_ptr<httplib::ClientImpl> c;
    if (tls) {
      auto ssl = cert ? std::make_unique<httplib::SSLClient>(host, port, cert, key)
                      : std::make_unique<httplib::SSLClient>(host, port);
      if (!cfg.ca_pem.empty()) {
        X509_STORE* store = X509_STORE_new();
        BIO* bio = BIO_new_mem_buf(cfg.ca_pem.data(), static_cast<int>(cfg.ca_pem.size()));
        while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
          X509_STORE_add_cert(store, x);
          X509_free(x);
        }
        BIO_free(bio);
        ssl->set_ca_cert_store(store);  // takes ownership
      }
      ssl->enable_server_certificate_verification(!cfg.insecure_skip_tls_verify);
      c = std::move(ssl);
    } else {
      c = std::make_unique<httplib::ClientImpl>(host, port);
    }
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);
    c->set_connection_timeout(std::max(1, cfg.timeout_seconds), 0);
    c->set_read_timeout(read_timeout_s, 0);
    c->set_write_timeout(std::max(1, cfg.timeout_seconds), 0);
    return c;
  }

  std::unique_ptr<httplib::ClientImpl> Take() {
    {
      std::lock_guard<std::mutex> lock(pool_mu);
      if (!pool.empty()) {
        auto c = std::move(pool.back());
        pool.pop_back();
        return c;
      }
    }
    return NewClient(std::max(1, cfg.timeout_seconds));
  }
  void Give(std::unique_ptr<httplib::ClientImpl> c) {
    std::lock_guard<std::mutex> lock(pool_mu);
    if (pool.size() < 16) pool.push_back(std::move(c));
  }

  std::string Token() {
    std::lock_guard<std::mutex> lock(token_mu);
    auto now = std::chrono::steady_clock::now();
    if (!cfg.token_file.empty() && (token.empty() || now - token_read > std::chrono::minutes(1))) {
      if (auto t = ReadFile(cfg.token_file); t.ok()) {
        token = *t;
        while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
      }
      token_read = now;
    }
    return token.empty() ? cfg.token : token;
  }

  httplib::Headers Headers() {
    httplib::Headers h{{"Accept", "application/json"}, {"User-Agent", cfg.user_agent}};
    std::string t = Token();
    if (!t.empty()) h.emplace("Authorization", "Bearer " + t);
    return h;
  }

  struct Reply {
    int status = 0;
    std::string body;
  };

  // One request with the rate limit; retries once on a transport error (a pooled keep-alive
  // connection the server closed) for idempotent methods.
  StatusOr<Reply> Do(const std::string& method, const std::string& path, const std::string& body,
                     const std::string& content_type) {
    limiter->Acquire();
    bool idempotent = method != "POST";
    for (int attempt = 0;; ++attempt) {
      auto c = Take();
      requests.fetch_add(1);
      httplib::Result res{nullptr, httplib::Error::Unknown};
      auto h = Headers();
      if (method == "GET") {
        res = c->Get(path, h);
      } else if (method == "POST") {
        res = c->Post(path, h, body, content_type);
      } else if (method == "PUT") {
        res = c->Put(path, h, body, content_type);
      } else if (method == "PATCH") {
        res = c->Patch(path, h, body, content_type);
      } else if (method == "DELETE") {
        res = c->Delete(path, h);
      } else {
        return Internal("unknown method " + method);
      }
      if (res) {
        Reply r{res->status, std::move(res->body)};
        Give(std::move(c));
        return r;
      }
      if (!idempotent || attempt >= 1) {
        return Unavailable(method + " " + path + ": " + httplib::to_string(res.error()));
      }
    }
  }

  StatusOr<Json> DoJson(const std::string& method, const std::string& path, const std::string& body,
                        const std::string& content_type) {
    auto r = Do(method, path, body, content_type);
    if (!r.ok()) return r.status();
    if (r->status < 200 || r->status >= 300) return StatusFromHttp(r->status, r->body);
    Json j = Json::parse(r->body, nullptr, false);
    if (j.is_discarded()) return Unavailable(method + " " + path + ": response is not JSON");
    return j;
  }
};

HttpKubeClient::HttpKubeClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpKubeClient::~HttpKubeClient() = default;

uint64_t HttpKubeClient::request_count() const { return impl_->requests.load(); }

StatusOr<std::unique_ptr<HttpKubeClient>> HttpKubeClient::Create(const ClientConfig& config) {
  auto impl = std::make_unique<Impl>();
  impl->cfg = config;
  impl->limiter = std::make_unique<RateLimiter>(config.qps, config.burst);
  std::string s = config.server;
  if (s.rfind("https://", 0) == 0) {
    impl->tls = true;
    s = s.substr(8);
  } else if (s.rfind("http://", 0) == 0) {
    s = s.substr(7);
  } else {
    return InvalidArgument("server \"" + config.server + "\" must start with https:// or http://");
  }
  s = s.substr(0, s.find('/'));
  std::string port;
  if (!s.empty() && s[0] == '[') {  // [IPv6]:port
    auto close = s.find(']');
    if (close == std::string::npos) return InvalidArgument("server: bad IPv6 address " + s);
    impl->host = s.substr(1, close - 1);
    if (close + 1 < s.size() && s[close + 1] == ':') port = s.substr(close + 2);
  } else {
    auto colon = s.find(':');
    impl->host = s.substr(0, colon);
    if (colon != std::string::npos) port = s.substr(colon + 1);
  }
  if (impl->host.empty()) return InvalidArgument("server \"" + config.server + "\" has no host");
  if (port.empty()) {
    impl->port = impl->tls ? 443 : 80;
  } else {
    char* end = nullptr;
    long p = std::strtol(port.c_str(), &end, 10);
    if (*end != '\0' || p <= 0 || p > 65535) return InvalidArgument("server: bad port " + port);
    impl->port = static_cast<int>(p);
  }
  if (!config.client_cert_pem.empty()) {
    if (!impl->tls) return InvalidArgument("client certificate given for a plain http server");
    BIO* b = BIO_new_mem_buf(config.client_cert_pem.data(),
                             static_cast<int>(config.client_cert_pem.size()));
    impl->cert = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    b = BIO_new_mem_buf(config.client_key_pem.data(),
                        static_cast<int>(config.client_key_pem.size()));
    impl->key = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    if (!impl->cert) return InvalidArgument("client certificate is not PEM");
    if (!impl->key) return InvalidArgument("client key is not PEM");
  }
  return std::unique_ptr<HttpKubeClient>(new HttpKubeClient(std::move(impl)));
}

StatusOr<Json> HttpKubeClient::Get(const Resource& r, const std::string& ns,
                                   const std::string& name) {
  auto path = r.ObjectPath(ns, name);
  if (!path.ok()) return path.status();
  return impl_->DoJson("GET", *path, "", "");
}

StatusOr<ObjectList> HttpKubeClient::List(const Resource& r, const ListOptions& opts) {
  ObjectList out;
  std::string cont;
  for (int page = 0; page < 100000; ++page) {
    auto j = impl_->DoJson("GET", r.CollectionPath(opts.ns) + ListQuery(opts, false, cont), "", "");
    if (!j.ok()) return j.status();
    auto items = j->find("items");
    if (items != j->end() && items->is_array()) {
      for (auto& it : *items) out.items.push_back(std::move(it));
    } else if (items != j->end() && !items->is_null()) {
      return Unavailable("list " + r.plural + ": items is not an array");
    }
    out.resource_version = MetaString(*j, "resourceVersion");
    cont = MetaString(*j, "continue");
    if (cont.empty()) return out;
  }
  return Unavailable("list " + r.plural + ": too many pages");
}

Status HttpKubeClient::Watch(const Resource& r, const ListOptions& opts,
                             const std::function<bool(const WatchEvent&)>& on_event,
                             CancelToken* cancel) {
  if (cancel && cancel->cancelled()) return Status::Ok();
  int read_timeout = opts.timeout_seconds > 0 ? opts.timeout_seconds + 30 : 600;
  auto c = impl_->NewClient(read_timeout);
  httplib::ClientImpl* raw = c.get();
  if (cancel) cancel->SetHook([raw] { raw->stop(); });
  impl_->requests.fetch_add(1);
  std::string path = r.CollectionPath(opts.ns) + ListQuery(opts, true, "");
  int http_status = 0;
  std::string buffer, error_body;
  Status result;
  bool stopped_by_us = false;
  auto res = c->Get(
      path, impl_->Headers(),
      [&](const httplib::Response& resp) {
        http_status = resp.status;
        return true;
      },
      [&](const char* data, size_t len) {
        if (http_status != 200) {
          if (error_body.size() < 65536) error_body.append(data, len);
          return true;
        }
        buffer.append(data, len);
        size_t start = 0;
        for (size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
          std::string_view line(buffer.data() + start, nl - start);
          if (line.empty() || line == "\r") continue;
          auto ev = ParseWatchEvent(line);
          if (!ev.ok()) {
            result = Unavailable("watch " + r.plural + ": " + ev.status().message());
            stopped_by_us = true;
            return false;
          }
          if (ev->type == WatchEventType::kError) {
            int code = ev->object.value("code", 0);
            result = StatusFromHttp(code ? code : 500, ev->object.dump());
            stopped_by_us = true;
            return false;
          }
          if (!on_event(*ev)) {
            stopped_by_us = true;
            return false;
          }
        }
        buffer.erase(0, start);
        return true;
      });
  if (cancel) cancel->SetHook(nullptr);
  if (stopped_by_us) return result;
  if (cancel && cancel->cancelled()) return Status::Ok();
  if (!res) {
    if (http_status != 0 && http_status != 200) return StatusFromHttp(http_status, error_body);
    // The server or network ended the stream: the caller re-watches from its last version.
    if (res.error() == httplib::Error::Read) return Status::Ok();
    return Unavailable("watch " + r.plural + ": " + httplib::to_string(res.error()));
  }
  if (res->status != 200) return StatusFromHttp(res->status, error_body);
  return Status::Ok();
}

StatusOr<Json> HttpKubeClient::Create(const Resource& r, const std::string& ns, const Json& obj) {
  return impl_->DoJson("POST", r.CollectionPath(r.namespaced ? ns : ""), obj.dump(),
                       "application/json");
}

StatusOr<Json> HttpKubeClient::Update(const Resource& r, const std::string& ns, const Json& obj) {
  auto path = r.ObjectPath(ns, MetaString(obj, "name"));
  if (!path.ok()) return path.status();
  return impl_->DoJson("PUT", *path, obj.dump(), "application/json");
}

StatusOr<Json> HttpKubeClient::Patch(const Resource& r, const std::string& ns,
                                     const std::string& name, PatchType type, const Json& patch) {
  auto path = r.ObjectPath(ns, name);
  if (!path.ok()) return path.status();
  return impl_->DoJson("PATCH", *path, patch.dump(), PatchContentType(type));
}

Status HttpKubeClient::Delete(const Resource& r, const std::string& ns, const std::string& name) {
  auto path = r.ObjectPath(ns, name);
  if (!path.ok()) return path.status();
  auto j = impl_->DoJson("DELETE", *path, "", "");
  return j.ok() ? Status::Ok() : j.status();
}

Status HttpKubeClient::Bind(const std::string& ns, const std::string& name, const std::string& uid,
                            const std::string& node) {
  auto path = Resource::Pods().ObjectPath(ns, name);
  if (!path.ok()) return path.status();
  Json binding = {{"apiVersion", "v1"},
                  {"kind", "Binding"},
                  {"metadata", {{"name", name}, {"namespace", ns}}},
                  {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}}}};
  if (!uid.empty()) binding["metadata"]["uid"] = uid;
  auto j = impl_->DoJson("POST", *path + "/binding", binding.dump(), "application/json");
  return j.ok() ? Status::Ok() : j.status();
}

}  // namespace hami::k8s
