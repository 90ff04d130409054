#include "hostd/cli.h"

#include <signal.h>
#include <unistd.h>

#include <sys/stat.h>
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include "common/log.h"
#include "hostd/build_paths.h"
#include "hostd/client.h"
#include "hostd/daemon.h"
#include "hostd/http_api.h"
#include "hostd/peer_server.h"
#include "hostd/run.h"
#include "hostd/views.h"

namespace hami::hostd {
namespace {

using nlohmann::json;

int64_t Now() { return static_cast<int64_t>(time(nullptr)); }

int PrintError(const char* cmd, const Status& s) {
  std::fprintf(stderr, "hami %s: %s\n", cmd, s.message().c_str());
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
      return kExitUsage;
    case StatusCode::kUnavailable:
      return kExitDaemon;
    default:
      return kExitInternal;
  }
}

struct ServeFlags {
  std::string state_dir;
  std::string listen;
  std::string listen_tcp;
  std::string token_file;
  std::string port_file;
  int max_slices_per_user = 64;
  int max_queued_per_user = 16;
  std::string backend = "auto";
  bool fake = false;
  std::string nvml_lib = "libnvidia-ml.so.1";
  std::string fake_config;
  std::string static_gpus;
  std::string libvgpu;
  int split_count = 10;
  std::string gpu_policy = "spread";
  std::string node_name;
  int reap_interval_ms = 200;
  std::vector<std::string> user_quotas, group_quotas;  // NAME:gpumem=..,gpucores=..,gpus=..
  std::string quota_file;
};

// The quota rules of --user-quota, --group-quota and --quota-file (docs/quotas.md).
StatusOr<std::vector<QuotaRule>> QuotaRules(const ServeFlags& f) {
  std::vector<QuotaRule> rules;
  if (!f.quota_file.empty()) {
    auto file = LoadQuotaFile(f.quota_file);
    if (!file.ok()) return file.status();
    rules = std::move(*file);
  }
  for (bool group : {false, true}) {
    for (const auto& text : group ? f.group_quotas : f.user_quotas) {
      auto r = ParseQuotaRule(text, group);
      if (!r.ok()) return r.status();
      rules.push_back(std::move(*r));
    }
  }
  return rules;
}

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == 0) return "local";
  return buf;
}

// Picks the GPU backend. Fills ctx with what jobs need to use the same driver.
StatusOr<std::unique_ptr<GpuSource>> OpenBackend(const ServeFlags& f, JobContext* ctx) {
  std::string backend = f.fake ? "fake" : f.backend;
  if (!f.static_gpus.empty()) backend = "static";
  if (!f.fake_config.empty()) {
    setenv("FAKEGPU_CONFIG", f.fake_config.c_str(), 1);
  }
  auto open_fake = [&]() -> StatusOr<std::unique_ptr<GpuSource>> {
    std::string dir = FindFakeGpuLibDir();
    if (dir.empty()) {
      return Unavailable(
          "the fake GPU driver (libnvidia-ml.so.1 of src/fakegpu) was not found; build target "
          "fakenvml or set HAMI_FAKEGPU_LIB_DIR");
    }
    auto src = OpenNvmlGpuSource(dir + "/libnvidia-ml.so.1", /*fake=*/true);
    if (!src.ok()) return src.status();
    ctx->driver_lib_dir = dir;
    return src;
  };
  if (backend == "static") return StaticGpuSource(f.static_gpus);
  if (backend == "fake") return open_fake();
  if (backend == "nvml" || backend == "auto") {
    auto src = OpenNvmlGpuSource(f.nvml_lib, /*fake=*/false);
    if (src.ok()) {
      if ((*src)->fake()) {
        // The fake library came first on the search path: jobs must load it too.
        std::string d = (*src)->Describe();
        auto slash = d.rfind('/');
        auto space = d.rfind(' ', slash);
        if (slash != std::string::npos && space != std::string::npos) {
          ctx->driver_lib_dir = d.substr(space + 1, slash - space - 1);
        }
      }
      return src;
    }
    if (backend == "nvml") return src.status();
    auto fake = open_fake();
    if (!fake.ok()) {
      return Unavailable("no GPU driver: " + src.status().message() + "; and " +
                         fake.status().message());
    }
    log::Warn("no NVIDIA driver here ({}); using the FAKE GPU driver instead",
              src.status().message());
    return fake;
  }
  return InvalidArgument("unknown --gpu-backend \"" + backend +
                         "\" (expected auto, nvml, fake or static)");
}

// What the daemon found: GPUs, restored state, the libvgpu.so jobs get.
void PrintStartup(const Daemon& d, const std::string& state_dir) {
  const auto& opt = d.options();
  auto gpus = d.Gpus();
  log::Info("{} GPU(s) from {}{}", gpus.size(), d.gpu_source(),
            d.fake() ? "  [FAKE GPU: simulated devices, not real hardware]" : "");
  for (const auto& g : gpus) {
    log::Info("  {} {} {} {}{}", g.gpu.index, g.gpu.uuid, g.type, FormatMib(g.memory_mib),
              d.fake() ? " (fake GPU)" : "");
  }
  log::Info("{} slice(s) and {} queued request(s) restored from {}", d.Slices().size(),
            d.Queue().size(), state_dir);
  if (opt.job.libvgpu.empty()) {
    log::Warn("libvgpu.so not found; `hami run` will refuse to start jobs (pass --libvgpu PATH)");
  } else {
    log::Info("jobs get {}", opt.job.libvgpu);
  }
}

struct Listeners {
  ApiAddress sock;
  std::optional<ApiAddress> tcp;
};

// --listen must be a socket path; --listen-tcp, when given, a loopback HOST:PORT.
StatusOr<Listeners> ParseListeners(const ServeFlags& f, const std::string& state_dir) {
  Listeners l;
  // A user's own daemon puts its socket next to its state; root's is the system one.
  std::string def = geteuid() == 0 ? std::string(kSystemSocket) : state_dir + "/hami.sock";
  auto sock = ParseApiAddress(f.listen.empty() ? def : f.listen);
  if (!sock.ok()) return InvalidArgument("--listen: " + sock.status().message());
  if (!sock->unix_socket) {
    return InvalidArgument("--listen " + f.listen +
                           " is not a socket path; TCP is opted into with --listen-tcp "
                           "HOST:PORT (the API token is then required)");
  }
  l.sock = *sock;
  if (!f.listen_tcp.empty()) {
    auto t = ParseApiAddress(f.listen_tcp, /*allow_port_zero=*/true);
    if (!t.ok()) return InvalidArgument("--listen-tcp: " + t.status().message());
    if (t->unix_socket || !IsLoopbackHost(t->host)) {
      return InvalidArgument("--listen-tcp " + f.listen_tcp +
                             ": only loopback HOST:PORT (the API is plain HTTP; its token "
                             "would cross the network)");
    }
    l.tcp = *t;
  }
  return l;
}

// The daemon's options from the flags. Opens the GPU backend into *source.
StatusOr<DaemonOptions> DaemonOptionsFrom(const ServeFlags& f, std::unique_ptr<GpuSource>* source) {
  DaemonOptions opt;
  opt.state_dir = f.state_dir.empty() ? DefaultStateDir() : f.state_dir;
  opt.node_name = f.node_name.empty() ? HostName() : f.node_name;
  opt.split_count = f.split_count;
  opt.reap_interval = std::chrono::milliseconds(f.reap_interval_ms);
  auto quotas = QuotaRules(f);
  if (!quotas.ok()) return quotas.status();
  opt.quotas = std::move(*quotas);
  auto policy = sched::ParseGpuPolicy(f.gpu_policy);
  if (!policy.ok()) return InvalidArgument("--gpu-policy: " + policy.status().message());
  opt.gpu_policy = *policy;
  opt.job.libvgpu = f.libvgpu.empty() ? FindLibvgpu() : f.libvgpu;
  if (!opt.job.libvgpu.empty() && access(opt.job.libvgpu.c_str(), R_OK) != 0) {
    return InvalidArgument("--libvgpu " + opt.job.libvgpu + " is not readable");
  }
  auto opened = OpenBackend(f, &opt.job);
  if (!opened.ok()) return opened.status();
  *source = std::move(*opened);
  for (const char* var : {"FAKEGPU_CONFIG", "FAKEGPU_STATE"}) {
    const char* v = getenv(var);
    if (v && *v && (*source)->fake()) opt.job.extra_env[var] = v;
  }
  opt.max_slices_per_user = f.max_slices_per_user;
  opt.max_queued_per_user = f.max_queued_per_user;
  return opt;
}

// Signals go to the main thread's sigwait; every thread started after this inherits the mask.
sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that went away must not kill the daemon
  return set;
}

// Any local user may talk to a root daemon (as themselves); a user's own daemon serves only
// that user.
mode_t SocketMode() { return geteuid() == 0 ? 0666 : 0600; }

// Binds the socket (and the TCP port when asked); returns the bound TCP port (0 without TCP)
// after writing it to --port-file when given.
StatusOr<int> BindApi(ApiServer& server, const Listeners& l, const std::string& port_file) {
  if (l.sock.path == kSystemSocket) {
    std::error_code ec;
    std::filesystem::create_directories("/run/hami", ec);
    chmod("/run/hami", 0755);
  }
  Status us = server.BindUnix(l.sock.path, SocketMode());
  if (!us.ok()) return us;
  int bound = 0;
  if (l.tcp) {
    auto b = server.BindTcp(l.tcp->host, l.tcp->port);
    if (!b.ok()) return b.status();
    bound = *b;
  }
  if (!port_file.empty()) {
    std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << bound << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  }
  return bound;
}

int Serve(const ServeFlags& f) {
  log::Init("hami-serve");  // the daemon's lines: timestamped, leveled ($HAMI_LOG_LEVEL)
  std::unique_ptr<GpuSource> source;
  auto opt = DaemonOptionsFrom(f, &source);
  if (!opt.ok()) return PrintError("serve", opt.status());
  auto listeners = ParseListeners(f, opt->state_dir);
  if (!listeners.ok()) return PrintError("serve", listeners.status());
  const ApiAddress* sock = &listeners->sock;
  const std::optional<ApiAddress>& tcp = listeners->tcp;
  const sigset_t set = BlockStopSignals();

  auto daemon = Daemon::Open(*opt, std::move(source));
  if (!daemon.ok()) return PrintError("serve", daemon.status());
  for (const auto& note : (*daemon)->startup_notes()) {
    log::Warn("{}", note);
  }
  ApiOptions api;
  const std::string token_file = f.token_file.empty() ? DefaultTokenFile() : f.token_file;
  if (tcp) {
    auto token = CreateTokenFile(token_file);
    if (!token.ok()) return PrintError("serve", token.status());
    api.token = *token;
  }
  ApiServer server(**daemon, api);
  auto bound = BindApi(server, *listeners, f.port_file);
  if (!bound.ok()) return PrintError("serve", bound.status());
  Daemon& d = **daemon;
  PrintStartup(d, opt->state_dir);
  log::Info("listening on unix:{} (mode {:03o}; metrics at /metrics)", sock->path,
            static_cast<unsigned>(SocketMode()));
  if (tcp) {
    log::Info(
        "and on http://{}:{} for holders of the token in {} (\"Authorization: Bearer "
        "<token>\")",
        tcp->host, *bound, token_file);
  }
  d.StartReaper();
  server.Start();
  int sig = 0;
  sigwait(&set, &sig);
  log::Info("signal {}, stopping (slices stay recorded)", sig);
  server.Stop();
  d.StopReaper();
  unlink(sock->path.c_str());
  return 0;
}

StatusOr<std::unique_ptr<ApiClient>> Client(const std::string& addr) {
  return ApiClient::Make(addr.empty() ? DefaultAddress() : addr);
}

int GetAndPrint(const char* cmd, const std::string& addr, const std::string& path,
                const std::string& key, bool as_json, std::string (*format)(const json&, int64_t)) {
  auto c = Client(addr);
  if (!c.ok()) return PrintError(cmd, c.status());
  auto r = (*c)->CallOk("GET", path);
  if (!r.ok()) return PrintError(cmd, r.status());
  if (as_json) {
    std::cout << (*r)[key].dump(2) << "\n";
  } else {
    std::cout << format((*r)[key], Now());
  }
  return 0;
}

// Splits a comma list; an empty item is an error, never "anything" (issue 12).
Status SplitList(const char* flag, const std::string& s, std::vector<std::string>* out) {
  size_t b = 0;
  while (b <= s.size()) {
    size_t e = s.find(',', b);
    std::string item = s.substr(b, e == std::string::npos ? std::string::npos : e - b);
    if (item.empty()) {
      return InvalidArgument(std::string(flag) + " \"" + s + "\" has an empty item");
    }
    out->push_back(item);
    if (e == std::string::npos) break;
    b = e + 1;
  }
  return Status::Ok();
}

CLI::App* AddServe(CLI::App& app, ServeFlags* sf) {
  auto* serve = app.add_subcommand("serve", "Run the daemon that owns this host's GPUs");
  serve->add_option("--state-dir", sf->state_dir,
                    "State directory (default /var/lib/hami as root, else "
                    "$XDG_STATE_HOME/hami or ~/.local/state/hami)");
  serve->add_option("--listen", sf->listen,
                    "Unix socket of the API (default /run/hami/hami.sock as root, else "
                    "<state dir>/hami.sock); callers are known by their uid");
  serve->add_option("--listen-tcp", sf->listen_tcp,
                    "Also listen on loopback TCP HOST:PORT (port 0 = any); every request then "
                    "needs the API token (Authorization: Bearer)");
  serve->add_option("--token-file", sf->token_file,
                    "Where --listen-tcp writes its fresh API token, mode 0600 (default "
                    "<state dir>/api.token)");
  serve->add_option("--port-file", sf->port_file, "Write the bound TCP port to this file");
  serve
      ->add_option("--max-slices-per-user", sf->max_slices_per_user,
                   "Slices one user may hold at once")
      ->check(CLI::Range(1, 100000));
  serve
      ->add_option("--max-queued-per-user", sf->max_queued_per_user,
                   "Requests one user may have waiting at once")
      ->check(CLI::Range(1, 100000));
  serve
      ->add_option("--gpu-backend", sf->backend,
                   "auto (real NVML, else the fake driver), nvml, fake, static")
      ->check(CLI::IsMember({"auto", "nvml", "fake", "static"}));
  serve->add_flag("--fake", sf->fake, "Use the fake GPU driver (same as --gpu-backend fake)");
  serve->add_option("--nvml-lib", sf->nvml_lib, "NVML library to dlopen");
  serve->add_option("--fake-config", sf->fake_config,
                    "FAKEGPU_CONFIG file describing the fake GPUs (with --fake)");
  serve->add_option("--static-gpus", sf->static_gpus,
                    "No driver at all: in-memory fake GPUs of these sizes, e.g. 16g,16g");
  serve->add_option("--libvgpu", sf->libvgpu, "libvgpu.so preloaded into jobs (default: found)");
  serve->add_option("--split-count", sf->split_count, "Slices per GPU at most")
      ->check(CLI::Range(1, 1000));
  serve->add_option("--gpu-policy", sf->gpu_policy, "binpack or spread (which GPU a slice gets)");
  serve->add_option("--node-name", sf->node_name, "Node label in metrics (default hostname)");
  serve
      ->add_option("--reap-interval-ms", sf->reap_interval_ms, "How often dead jobs are looked for")
      ->check(CLI::Range(10, 60000));
  serve->add_option("--user-quota", sf->user_quotas,
                    "Quota of a user, NAME:gpumem=SIZE,gpucores=N,gpus=N (repeatable)");
  serve->add_option("--group-quota", sf->group_quotas,
                    "Quota of a group (its members together), same form (repeatable)");
  serve->add_option("--quota-file", sf->quota_file,
                    "File of quota rules, one a line: user|group NAME gpumem=SIZE,...");
  return serve;
}

// `hami run`'s flags as given; RunCommand turns them into RunOptions.
struct RunFlags {
  RunOptions ro;
  std::string gpumem, gpu_type, gpu_uuid;
  bool no_wait = false;
  CLI::Option* gpumem_opt = nullptr;
  CLI::Option* type_opt = nullptr;
  CLI::Option* uuid_opt = nullptr;
};

CLI::App* AddRun(CLI::App& app, RunFlags* rf) {
  RunOptions& ro = rf->ro;
  auto* run = app.add_subcommand("run", "Run a command in a GPU slice (waits for one if needed)");
  rf->gpumem_opt =
      run->add_option("--gpumem", rf->gpumem,
                      "Device memory per GPU: 2g, 1536m, 4Gi, 50% (default: the whole card)");
  run->add_option("--gpucores", ro.request.cores,
                  "Compute share per GPU in percent, 0-100 "
                  "(100 = exclusive card, 0 = no limit)")
      ->check(CLI::Range(0, 100));
  run->add_option("--gpus", ro.request.gpus, "Number of GPUs (each a different card)")
      ->check(CLI::Range(1, 16));
  rf->type_opt = run->add_option("--gpu-type", rf->gpu_type,
                                 "Only cards whose type contains this (comma list)");
  rf->uuid_opt =
      run->add_option("--gpu-uuid", rf->gpu_uuid, "Only these cards (comma list of UUIDs)");
  run->add_option("--priority", ro.request.priority, "CUDA_TASK_PRIORITY: 0 high, 1 low")
      ->check(CLI::Range(0, 1));
  run->add_flag("--no-wait", rf->no_wait, "Fail at once (exit 75) when no slice is free");
  run->add_option("--libvgpu", ro.libvgpu, "libvgpu.so to preload instead of the daemon's");
  run->add_flag("--no-preload", ro.no_preload, "Do not preload libvgpu.so (job NOT capped)");
  run->add_flag("-q,--quiet", ro.quiet, "No progress messages");
  run->add_option("command", ro.command, "The command (after --)")->required();
  run->allow_extras(false);
  return run;
}

int RunCommand(RunFlags& rf, const std::string& addr) {
  RunOptions& ro = rf.ro;
  ro.address = addr.empty() ? DefaultAddress() : addr;
  ro.request.wait = !rf.no_wait;
  // A flag given with an empty value is an error, never "anything" (issue 12).
  if (rf.gpumem_opt->count() > 0) {
    Status s = ParseMemory(rf.gpumem, &ro.request.memory_mib, &ro.request.memory_percent);
    if (!s.ok()) return PrintError("run", InvalidArgument("--gpumem: " + s.message()));
  }
  if (rf.type_opt->count() > 0) {
    Status s = SplitList("--gpu-type", rf.gpu_type, &ro.request.gpu_types);
    if (!s.ok()) return PrintError("run", s);
  }
  if (rf.uuid_opt->count() > 0) {
    Status s = SplitList("--gpu-uuid", rf.gpu_uuid, &ro.request.gpu_uuids);
    if (!s.ok()) return PrintError("run", s);
  }
  return RunJob(ro);
}

// The read-only views (ps, gpus, queue, top, quota) and release: their flags and commands.
struct ViewFlags {
  bool as_json = false;
  bool once = false;
  double interval = 1.0;
  std::string release_id;
  CLI::App *ps = nullptr, *gpus = nullptr, *queue = nullptr, *top = nullptr, *quota = nullptr,
           *rel = nullptr;
};

void AddViews(CLI::App& app, ViewFlags* v) {
  v->ps = app.add_subcommand("ps", "List slices with their limits and live memory use");
  v->ps->add_flag("--json", v->as_json, "JSON output");
  v->gpus = app.add_subcommand("gpus", "List the GPUs with allocated/total memory and cores");
  v->gpus->alias("nodes");
  v->gpus->add_flag("--json", v->as_json, "JSON output");
  v->queue = app.add_subcommand("queue", "List requests waiting for a slice");
  v->queue->add_flag("--json", v->as_json, "JSON output");
  v->top = app.add_subcommand("top", "Refreshing view of GPUs, slices and queue");
  v->top->add_flag("--once", v->once, "Print one screen and exit");
  v->top->add_flag("--json", v->as_json, "One JSON snapshot (implies --once)");
  v->top->add_option("-n,--interval", v->interval, "Seconds between refreshes")
      ->check(CLI::Range(0.1, 3600.0));
  v->quota = app.add_subcommand("quota", "List the user and group quotas with their usage");
  v->quota->add_flag("--json", v->as_json, "JSON output");
  v->rel = app.add_subcommand("release", "Free a slice by id (e.g. s3)");
  v->rel->add_option("slice", v->release_id, "Slice id")->required();
}

int Release(const std::string& addr, const std::string& release_id) {
  auto c = Client(addr);
  if (!c.ok()) return PrintError("release", c.status());
  auto r = (*c)->CallOk("DELETE", "/v1/slices/" + release_id);
  if (!r.ok()) return PrintError("release", r.status());
  std::cout << "released " << r->value("released", release_id) << "\n";
  return 0;
}

int Top(const std::string& addr, const ViewFlags& v) {
  auto c = Client(addr);
  if (!c.ok()) return PrintError("top", c.status());
  const bool tty = isatty(STDOUT_FILENO) != 0;
  for (;;) {
    auto info = (*c)->CallOk("GET", "/v1/info");
    auto g = info.ok() ? (*c)->CallOk("GET", "/v1/gpus") : info;
    auto s = g.ok() ? (*c)->CallOk("GET", "/v1/slices") : g;
    auto q = s.ok() ? (*c)->CallOk("GET", "/v1/queue") : s;
    if (!q.ok()) return PrintError("top", q.status());
    if (v.as_json) {
      std::cout << json{{"info", *info},
                        {"gpus", (*g)["gpus"]},
                        {"slices", (*s)["slices"]},
                        {"queue", (*q)["queue"]}}
                       .dump(2)
                << "\n";
      return 0;
    }
    std::string screen = TopScreen(*info, (*g)["gpus"], (*s)["slices"], (*q)["queue"], Now());
    if (v.once) {
      std::cout << screen;
      return 0;
    }
    if (tty) std::cout << "\033[H\033[2J";
    std::cout << screen << std::flush;
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(v.interval * 1000)));
  }
}

int RunView(const std::string& addr, const ViewFlags& v) {
  if (*v.ps) return GetAndPrint("ps", addr, "/v1/slices", "slices", v.as_json, SlicesTable);
  if (*v.gpus) {
    return GetAndPrint("gpus", addr, "/v1/gpus", "gpus", v.as_json,
                       [](const json& g, int64_t) { return GpusTable(g); });
  }
  if (*v.queue) return GetAndPrint("queue", addr, "/v1/queue", "queue", v.as_json, QueueTable);
  if (*v.quota) {
    return GetAndPrint("quota", addr, "/v1/quota", "quotas", v.as_json,
                       [](const json& q, int64_t) { return QuotaTable(q); });
  }
  if (*v.rel) return Release(addr, v.release_id);
  if (*v.top) return Top(addr, v);
  return kExitUsage;
}

}  // namespace

StatusOr<std::unique_ptr<GpuSource>> StaticGpuSource(const std::string& spec) {
  std::vector<HostGpu> gpus;
  size_t start = 0;
  int i = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    std::string item =
        spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    int64_t mib = 0;
    int32_t pct = 0;
    Status s = ParseMemory(item, &mib, &pct);
    if (!s.ok() || pct > 0) {
      return InvalidArgument("--static-gpus item \"" + item + "\": expected a size like 16g");
    }
    HostGpu g;
    char uuid[64];
    std::snprintf(uuid, sizeof(uuid), "GPU-00000000-0000-4000-8000-%012d", i);
    g.uuid = uuid;
    g.index = i++;
    g.name = "Static Fake GPU";
    g.memory_bytes = static_cast<uint64_t>(mib) << 20;
    gpus.push_back(g);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return std::unique_ptr<GpuSource>(new MemoryGpuSource(std::move(gpus)));
}

int RunCli(int argc, char** argv) {
  CLI::App app{"hami: share this machine's GPUs in memory/compute slices (single-host mode)",
               "hami"};
  app.require_subcommand(1);
  app.set_version_flag("--version", BuildVersion());
  std::string addr;
  app.add_option("--addr", addr,
                 "Daemon address: unix:/PATH (default $HAMI_ADDR or unix:/run/hami/hami.sock) "
                 "or HOST:PORT of --listen-tcp (sends the token of $HAMI_TOKEN or "
                 "$HAMI_TOKEN_FILE)")
      ->envname("HAMI_ADDR");
  app.footer(
      "Exit codes: 0 ok, 2 bad usage, 69 daemon unreachable, 70 internal error, 75 --no-wait "
      "and nothing free, 77 request can never fit, 78 libvgpu.so missing; `hami run` otherwise "
      "exits with the command's code (128+N for signal N).");
  ServeFlags sf;
  auto* serve = AddServe(app, &sf);
  RunFlags rf;
  auto* run = AddRun(app, &rf);
  ViewFlags views;
  AddViews(app, &views);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  if (*serve) return Serve(sf);
  if (*run) return RunCommand(rf, addr);
  return RunView(addr, views);
}

}  // namespace hami::hostd
