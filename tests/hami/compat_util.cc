// Loading of the compatibility suite's data files.
#include "compat_util.h"

#include <cctype>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace hami::compat {

namespace {

std::vector<Sample> Failed(const std::string& file, const std::string& table,
                           const std::string& why) {
  return {Sample{file, table, "load_error", Json{{"load_error", why}, {"source", "-"}}}};
}

}  // namespace

std::vector<Sample> LoadTable(const std::string& file, const std::string& table) {
  std::ifstream in(std::string(HAMI_COMPAT_TESTDATA) + "/" + file);
  if (!in) return Failed(file, table, "cannot open testdata/" + file);
  std::stringstream text;
  text << in.rdbuf();
  Json doc = Json::parse(text.str(), nullptr, /*allow_exceptions=*/false,
                         /*ignore_comments=*/true);
  if (doc.is_discarded() || !doc.is_object()) return Failed(file, table, "not a JSON object");
  auto it = doc.find(table);
  if (it == doc.end() || !it->is_array() || it->empty()) {
    return Failed(file, table, "no non-empty table '" + table + "'");
  }
  std::vector<Sample> out;
  for (const Json& row : *it) {
    if (!row.is_object() || !row.contains("name") || !row["name"].is_string() ||
        !row.contains("source") || !row["source"].is_string() ||
        row["source"].get<std::string>().empty()) {
      return Failed(file, table, "a row without name or source: " + row.dump());
    }
    out.push_back(Sample{file, table, row["name"].get<std::string>(), row});
  }
  return out;
}

std::string ParamName(const Sample& s) {
  std::string n;
  for (char c : s.name) n += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return n.empty() ? "unnamed" : n;
}

std::string Where(const Sample& s) {
  std::string src = s.data.contains("source") ? s.data["source"].dump() : "?";
  return s.file + ":" + s.table + "/" + s.name + " (from " + src + ")";
}

const Json* GoField(const Json& obj, const std::string& key) {
  if (!obj.is_object()) return nullptr;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string& k = it.key();
    if (k.size() != key.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < k.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(k[i])) ==
             std::tolower(static_cast<unsigned char>(key[i]));
    }
    if (same) return &*it;
  }
  return nullptr;
}

void CheckDiffers(const Sample& s) {
  if (!s.data.contains("expect_differs")) return;
  EXPECT_FALSE(s.data["expect_differs"].get<std::string>().empty()) << Where(s);
  EXPECT_TRUE(s.data.contains("hami")) << Where(s) << ": a difference must record HAMi's outcome";
}

}  // namespace hami::compat
