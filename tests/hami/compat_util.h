// Loading of the compatibility suite's data files (testdata/*.json): each holds tables of HAMi
// samples, every sample with its "name", the HAMi "source" it was copied from, and optionally
// "expect_differs" (why this project's documented outcome differs from HAMi's).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hami::compat {

using Json = nlohmann::json;

// One row of a table; `file` and `table` are kept for messages.
struct Sample {
  std::string file, table, name;
  Json data;
};

// The rows of `table` in testdata/`file`. A file that cannot be read or parsed, a table that is
// missing or empty, or a row without name/source yields one row named "load_error" whose data
// holds {"load_error": why}, so the suite fails loudly instead of running zero cases.
std::vector<Sample> LoadTable(const std::string& file, const std::string& table);

// GoogleTest parameter names: the sample's name with every non-alphanumeric character as '_'.
std::string ParamName(const Sample& s);

// "<file>:<table>/<name> (from <source>)", for failure messages.
std::string Where(const Sample& s);

// The member of `obj` whose key equals `key` ignoring ASCII case, as Go's encoding/json matches
// fields when it decodes (kube-scheduler reads the extender's answers that way); null if none.
const Json* GoField(const Json& obj, const std::string& key);

// A documented difference must say why and record HAMi's outcome; the expectation the test then
// checks is this project's (GoogleTest failures, no return value).
void CheckDiffers(const Sample& s);

// Prints a sample as its location in failure output instead of its bytes.
inline void PrintTo(const Sample& s, std::ostream* os) { *os << Where(s); }

}  // namespace hami::compat

// A row whose file could not be loaded fails here instead of vanishing.
#define HAMI_COMPAT_LOADED(s) \
  ASSERT_FALSE((s).data.contains("load_error")) << (s).data["load_error"].get<std::string>()
