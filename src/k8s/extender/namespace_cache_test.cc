#include "k8s/extender/namespace_cache.h"

#include <gtest/gtest.h>

namespace hami::k8s {
namespace {

// Answers Get for namespaces from a map and counts the calls; everything else is unused.
class NamespaceClient : public KubeClient {
 public:
  std::map<std::string, Json> namespaces;
  int gets = 0;
  StatusOr<Json> Get(const Resource&, const std::string&, const std::string& name) override {
    ++gets;
    auto it = namespaces.find(name);
    if (it == namespaces.end()) return NotFound("namespace " + name);
    return it->second;
  }
  StatusOr<ObjectList> List(const Resource&, const ListOptions&) override {
    return Internal("List");
  }
  Status Watch(const Resource&, const ListOptions&, const std::function<bool(const WatchEvent&)>&,
               CancelToken*) override {
    return Internal("Watch");
  }
  StatusOr<Json> Create(const Resource&, const std::string&, const Json&) override {
    return Internal("Create");
  }
  StatusOr<Json> Update(const Resource&, const std::string&, const Json&) override {
    return Internal("Update");
  }
  StatusOr<Json> Patch(const Resource&, const std::string&, const std::string&, PatchType,
                       const Json&) override {
    return Internal("Patch");
  }
  Status Delete(const Resource&, const std::string&, const std::string&) override {
    return Internal("Delete");
  }
  Status Bind(const std::string&, const std::string&, const std::string&,
              const std::string&) override {
    return Internal("Bind");
  }
};

struct FakeClock {
  std::chrono::steady_clock::time_point now{};
  NamespaceLabelCache::Clock fn() {
    return [this] { return now; };
  }
};

TEST(NamespaceLabelCache, ReadsOnceWithinTtlAndAgainAfter) {
  NamespaceClient client;
  client.namespaces["team-a"] = {{"metadata", {{"labels", {{"hami.io/webhook", "ignore"}}}}}};
  FakeClock clock;
  NamespaceLabelCache cache(&client, std::chrono::seconds(60), 100, clock.fn());
  auto first = cache.Get("team-a");
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->at("hami.io/webhook"), "ignore");
  clock.now += std::chrono::seconds(59);
  EXPECT_EQ(cache.Get("team-a"), first);
  EXPECT_EQ(client.gets, 1);
  client.namespaces["team-a"] = {{"metadata", {{"name", "team-a"}}}};  // label removed
  clock.now += std::chrono::seconds(2);
  auto later = cache.Get("team-a");
  ASSERT_TRUE(later.has_value());
  EXPECT_TRUE(later->empty());
  EXPECT_EQ(client.gets, 2);
}

TEST(NamespaceLabelCache, UnknownNamespaceIsNotCached) {
  NamespaceClient client;
  NamespaceLabelCache cache(&client);
  EXPECT_FALSE(cache.Get("nope").has_value());
  EXPECT_FALSE(cache.Get("nope").has_value());
  EXPECT_EQ(client.gets, 2);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(NamespaceLabelCache, IgnoresNonStringLabelsAndOddShapes) {
  NamespaceClient client;
  client.namespaces["a"] = {{"metadata", {{"labels", {{"x", 1}, {"y", "z"}}}}}};
  client.namespaces["b"] = {{"metadata", "not an object"}};
  client.namespaces["c"] = Json::array();
  NamespaceLabelCache cache(&client);
  EXPECT_EQ(cache.Get("a"), (std::map<std::string, std::string>{{"y", "z"}}));
  EXPECT_EQ(cache.Get("b"), (std::map<std::string, std::string>{}));
  EXPECT_EQ(cache.Get("c"), (std::map<std::string, std::string>{}));
}

TEST(NamespaceLabelCache, BoundedEntries) {
  NamespaceClient client;
  for (int i = 0; i < 10; ++i) client.namespaces["ns" + std::to_string(i)] = Json::object();
  NamespaceLabelCache cache(&client, std::chrono::seconds(60), 4);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(cache.Get("ns" + std::to_string(i)).has_value());
  EXPECT_LE(cache.size(), 4u);
  auto cb = cache.AsCallback();
  EXPECT_TRUE(cb("ns9").has_value());
}

}  // namespace
}  // namespace hami::k8s
