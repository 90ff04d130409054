// The web UI's view of `hami serve` (docs/webui.md): the daemon's GPUs, slices (with live use
// from their accounting files) and queue as a webui::Snapshot, the same state that `hami ps`,
// `hami top` and /metrics read.
#pragma once

#include "hostd/daemon.h"
#include "webui/model.h"

namespace hami::hostd {

class DaemonWebUiSource : public webui::DataProvider {
 public:
  explicit DaemonWebUiSource(const Daemon& daemon) : daemon_(daemon) {}
  webui::Snapshot Collect() override;

 private:
  const Daemon& daemon_;
};

}  // namespace hami::hostd
