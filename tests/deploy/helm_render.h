// A `helm template` stand-in for the chart tests (Helm is not a Debian package): Go's
// text/template with the Sprig/Helm functions deploy/helm/hami uses, Helm's value merge and its
// built-in objects. Test code only; it renders, it does not validate against a cluster.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace hami::deploytest {

// A template value, as Helm sees values: YAML numbers are float64, maps iterate sorted.
struct Value {
  enum Kind { kNil, kBool, kInt, kFloat, kString, kList, kMap } kind = kNil;
  bool b = false;
  long long i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<std::vector<Value>> list;
  std::shared_ptr<std::map<std::string, Value>> map;

  static Value Str(std::string v);
  static Value Bool(bool v);
  static Value Int(long long v);
  static Value Float(double v);
  static Value List(std::vector<Value> v = {});
  static Value Map(std::map<std::string, Value> v = {});
  bool Truthy() const;
  // Go's kind names: "invalid", "bool", "int", "float64", "string", "slice", "map".
  std::string KindName() const;
};

// Parses YAML text into values the way Helm does (numbers become float64).
StatusOr<Value> ParseValues(const std::string& yaml);
// Helm's coalesce: `user` over `defaults`, maps merged key by key, a null in `user` removing the
// default.
Value Coalesce(const Value& user, const Value& defaults);

struct RenderOptions {
  std::string release_name = "hami";
  std::string release_namespace = "kube-system";
  std::string kube_version = "v1.29.0";
};

// Renders every template of the chart in `chart_dir` (as `helm template` does) with the YAML
// values files `user_values` over the chart's values.yaml (later files win, as `-f a -f b`).
// Returns file name (relative to templates/) -> rendered text, or the first error (a `fail`, a bad
// value, a template error), naming the file.
StatusOr<std::map<std::string, std::string>> RenderChart(
    const std::string& chart_dir, const std::vector<std::string>& user_values,
    const RenderOptions& opts = {});

}  // namespace hami::deploytest
