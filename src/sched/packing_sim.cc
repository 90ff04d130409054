// packing_sim: the packing benchmark of sched_bench (trace, 100 nodes x 8 cards, capacity
// bound) without the engine, to try node and GPU scoring rules quickly (docs/scheduling.md,
// "Packing"). It applies the engine's fit rules (exclusive cards, split 10, memory, cores and
// HAMi's "0-core slice needs a card with cores left" rule) and reproduces the engine's
// binpack/binpack numbers exactly for the old rule (94.1 %) and the current one (96.2 %).
// Built as build/<preset>/src/sched/packing_sim (a research tool, not part of the product):
//
//   packing_sim <gpu-key>[:a[:b]] <node-key>[:a[:b]] [seeds=10] [uniform|small]
//   e.g. packing_sim fit:0.1 bestfit     (the engine's binpack/binpack)
//   env POOL=1: multi-GPU pods become single-GPU pods (cards anywhere); NOCORES=1: cores 0
//   (exclusive slices stay exclusive); DEBUG=1: the first rejected pod per seed.
//
// gpu-key (lower = preferred; lm, lc: the card's free memory, cores after the slice, as
// fractions; a, b: the key's parameters, default 0):
//   util     the old binpack GPU preference: -(slots + cores + memory utilisation) / 3
//   mem      lm (best fit on memory)
//   lin      lm + a lc
//   fit      lm + a max(lm, lc)            (the engine's rule since issue 4, a = 0.1)
//   absdiff  lm + a |lm - lc|
//   waste    lm + a [0 < lm < 5 GiB] + b [lc = 0 and lm >= 5 GiB]
//   ss       sum of squares (Csirik et al.) over free-memory levels, + a lm + b lc
// node-key (lower = preferred; ties: smaller node index; a, b: its own parameters):
//   util     the old binpack node score: -(utilisation after the pod), integer 0..1e6
//   bestfit  sum of the chosen cards' gpu-keys, then utilisation (the engine since issue 4)
//   opened   fewest empty cards opened, then bestfit
//   exact    bestfit + a/1000 card per card the pod fits on beyond those it takes
//   power    sum of gpu-key^a, then utilisation
//   scarce   bestfit + a * sum over request types the node stops hosting of p(type) / H^b,
//            H = nodes that can still host the type (types: 1/2/4 cards x 16 memory x 11 cores)
//   class    bestfit + a/1000 card if the node's first pod had another GPU count
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "sched/packing_trace.h"

namespace {

namespace packing = hami::sched::packing;
using Item = packing::TraceItem;
constexpr int64_t kMem = packing::kGpuMem;
constexpr int kSplit = packing::kSplit, kNodes = 100, kGpus = 8, kTypes = 3 * 16 * 11;
struct Card {
  int64_t mem = 0;
  int cores = 0, slices = 0, exclusive = 0;
};

bool Fits(const Card& c, const Item& t) {
  if (c.exclusive || (t.cores >= 100 && c.slices) || c.slices >= kSplit) return false;
  if (c.mem + t.mem > kMem) return false;
  return t.cores > 0 ? c.cores + t.cores <= 100 : c.cores < 100;
}
void Add(Card& c, const Item& t) {
  c.mem += t.mem;
  c.cores += t.cores;
  ++c.slices;
  c.exclusive += t.cores >= 100;
}

std::string gkey, nkey;
double A = 0, B = 0;    // gpu-key parameters
double NA = 0, NB = 0;  // node-key parameters

// "name:a:b" -> name, a, b
std::string ParseKey(const char* arg, double* a, double* b) {
  std::string s = arg;
  size_t c1 = s.find(':');
  std::string name = s.substr(0, c1);
  if (c1 != std::string::npos) {
    *a = std::atof(s.c_str() + c1 + 1);
    size_t c2 = s.find(':', c1 + 1);
    if (c2 != std::string::npos) *b = std::atof(s.c_str() + c2 + 1);
  }
  return name;
}
int level_count[200];  // ss: cards per free-memory level (GiB), live cards only
int hosts[kTypes];     // scarce: nodes able to host each request type
int first_count[kNodes];

int Level(const Card& c) {
  return c.exclusive || c.slices >= kSplit || c.cores >= 100
             ? 0
             : static_cast<int>((kMem - c.mem) / 1024);
}

double GpuKey(const Card& c, const Item& t) {
  double lm = static_cast<double>(kMem - c.mem - t.mem) / kMem,
         lc = (100.0 - c.cores - t.cores) / 100;
  if (gkey == "util")
    return -((c.slices + 1.0) / kSplit + (c.cores + t.cores) / 100.0 +
             static_cast<double>(c.mem + t.mem) / kMem) /
           3;
  if (gkey == "mem") return lm;
  if (gkey == "lin") return lm + A * lc;
  if (gkey == "fit") return t.cores >= 100 ? lm : lm + A * std::max(lm, lc);
  if (gkey == "absdiff") return lm + A * std::fabs(lm - lc);
  if (gkey == "waste")
    return lm + (lm > 1e-9 && lm < 5.0 / 80 ? A : 0) + (lc <= 1e-9 && lm >= 5.0 / 80 ? B : 0);
  if (gkey == "ss") {
    Card d = c;
    Add(d, t);
    int g = Level(c), g2 = Level(d);
    double del = 0;
    if (g2 > 0 && g2 < 80) del += 2 * level_count[g2] + 1;
    if (g > 0 && g < 80) del -= 2 * level_count[g] - 1;
    return del + A * lm + B * lc;
  }
  std::fprintf(stderr, "unknown gpu-key %s\n", gkey.c_str());
  std::exit(2);
}

// Which request types (count, memory class, cores class) the node can host.
void Abilities(const std::vector<Card>& cards, char* out) {
  int idx = 0;
  for (int ci = 0; ci <= 10; ++ci)
    for (int mm = 5; mm <= 80; mm += 5) {
      Item t{1, static_cast<int64_t>(mm) * 1024, 10 * ci};
      int f = 0;
      for (const Card& c : cards) f += Fits(c, t);
      out[idx++] = f >= 1;
      out[idx++] = f >= 2;
      out[idx++] = f >= 4;
    }
}
double TypeWeight(int idx) {
  int k = idx % 3, ci = idx / 48;
  return (ci == 0 ? 0.3 : 0.07) * (k == 0 ? 0.7 : k == 1 ? 0.2 : 0.1) / 16;
}

// One seed's trace: 20 requests per card.
std::vector<Item> MakeTrace(int seed, bool uniform, int64_t cards) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::vector<Item> tr;
  for (int i = 0; i < 20 * cards; ++i) {
    Item t = packing::NextItem(rng, uniform ? packing::Trace::kUniform : packing::Trace::kSmall);
    if (std::getenv("NOCORES") && t.cores < 100) t.cores = 0;
    int n = std::getenv("POOL") ? t.count : 1;
    if (n > 1) t.count = 1;
    for (int k = 0; k < n; ++k) tr.push_back(t);
  }
  return tr;
}

// The node key of placing `t` on node `n`'s cards `fit` (sorted by GPU key); lower is better.
double NodeKey(const std::vector<std::vector<Card>>& st, const std::vector<std::vector<char>>& abil,
               int n, const Item& t, const std::vector<int>& fit) {
  double um = 0, uc = 0, us = 0, left = 0, pw = 0;
  int opened = 0;
  for (const Card& c : st[n]) {
    um += static_cast<double>(c.mem);
    uc += c.cores;
    us += c.slices;
  }
  um += static_cast<double>(t.mem) * t.count;
  uc += t.cores * t.count;
  us += t.count;
  double util = (us / (kGpus * kSplit) + uc / (kGpus * 100.0) + um / (kGpus * double(kMem))) / 3;
  for (int j = 0; j < t.count; ++j) {
    double k = GpuKey(st[n][fit[j]], t);
    left += k;
    pw += std::pow(std::max(0.0, k), NA);
    opened += st[n][fit[j]].slices == 0;
  }
  if (nkey == "util") return -std::floor(util * 1e6 + 0.5);
  if (nkey == "bestfit") return left * 1e3 - util;
  if (nkey == "opened") return opened * 1e6 + left * 1e3 - util;
  if (nkey == "exact") {
    return left * 1e3 + NA * static_cast<double>(fit.size() - static_cast<size_t>(t.count)) - util;
  }
  if (nkey == "power") return pw * 1e3 - util;
  if (nkey == "scarce") {
    std::vector<Card> after = st[n];
    for (int j = 0; j < t.count; ++j) Add(after[fit[j]], t);
    char ab[kTypes];
    Abilities(after, ab);
    double cost = 0;
    for (int i = 0; i < kTypes; ++i)
      if (abil[n][i] && !ab[i]) cost += TypeWeight(i) * std::pow(1.0 / hosts[i], NB);
    return (NA * cost + left) * 1e3 - util;
  }
  if (nkey == "class") {
    return left * 1e3 - util + (first_count[n] && first_count[n] != t.count ? NA : 0);
  }
  std::fprintf(stderr, "unknown node-key %s\n", nkey.c_str());
  std::exit(2);
}

// DEBUG: why the first rejected request did not fit.
void ReportReject(int seed, const Item& t, const std::vector<std::vector<Card>>& st,
                  int64_t cards) {
  int pooled = 0, empty = 0;
  double free_all = 0, free_excl = 0;  // free memory, % of the cluster's
  for (const auto& nd : st)
    for (const Card& c : nd) {
      pooled += Fits(c, t);
      empty += c.slices == 0;
      double f = 100.0 * static_cast<double>(kMem - c.mem) / static_cast<double>(cards * kMem);
      free_all += f;
      if (c.exclusive) free_excl += f;
    }
  std::fprintf(stderr,
               "seed %d: rejected %d x %ld MiB, %d cores; %d cards fit it, %d empty; "
               "memory free %.1f %% (%.1f %% in exclusive cards)\n",
               seed, t.count, static_cast<long>(t.mem), t.cores, pooled, empty, free_all,
               free_excl);
}

// Places one seed's trace until the first rejection; returns placed / capacity bound.
double RunSeed(int seed, bool uniform, int64_t cards) {
  std::vector<Item> tr = MakeTrace(seed, uniform, cards);
  int64_t bound = packing::CapacityBound(tr, cards);
  std::vector<std::vector<Card>> st(kNodes, std::vector<Card>(kGpus));
  std::vector<std::vector<char>> abil(kNodes, std::vector<char>(kTypes));
  std::fill(std::begin(level_count), std::end(level_count), 0);
  std::fill(std::begin(first_count), std::end(first_count), 0);
  for (int n = 0; n < kNodes; ++n) Abilities(st[n], abil[n].data());
  std::fill(std::begin(hosts), std::end(hosts), kNodes);
  int64_t placed = 0;
  std::vector<int> fit, best_cards;
  for (const Item& t : tr) {
    int best = -1;
    double best_key = 1e300;
    for (int n = 0; n < kNodes; ++n) {
      fit.clear();
      for (int g = 0; g < kGpus; ++g)
        if (Fits(st[n][g], t)) fit.push_back(g);
      if (static_cast<int>(fit.size()) < t.count) continue;
      std::stable_sort(fit.begin(), fit.end(),
                       [&](int a, int b) { return GpuKey(st[n][a], t) < GpuKey(st[n][b], t); });
      double key = NodeKey(st, abil, n, t, fit);
      if (key < best_key) {
        best_key = key;
        best = n;
        best_cards.assign(fit.begin(), fit.begin() + t.count);
      }
    }
    if (best < 0) {
      if (std::getenv("DEBUG")) ReportReject(seed, t, st, cards);
      break;
    }
    for (int g : best_cards) {
      Card& c = st[best][g];
      --level_count[Level(c)];
      Add(c, t);
      ++level_count[Level(c)];
    }
    for (int i = 0; i < kTypes; ++i) hosts[i] -= abil[best][i];
    Abilities(st[best], abil[best].data());
    for (int i = 0; i < kTypes; ++i) hosts[i] += abil[best][i];
    if (!first_count[best]) first_count[best] = t.count;
    placed += t.count;
  }
  return static_cast<double>(placed) / static_cast<double>(bound);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <gpu-key>[:a[:b]] <node-key>[:a[:b]] [seeds] [uniform|small]\n",
                 argv[0]);
    return 2;
  }
  gkey = ParseKey(argv[1], &A, &B);
  nkey = ParseKey(argv[2], &NA, &NB);
  int seeds = argc > 3 ? std::atoi(argv[3]) : 10;
  bool uniform = argc <= 4 || std::strcmp(argv[4], "small") != 0;
  const int64_t cards = kNodes * kGpus;
  double sum = 0, lo = 9, hi = 0;
  for (int seed = 1; seed <= seeds; ++seed) {
    double r = RunSeed(seed, uniform, cards);
    sum += r;
    lo = std::min(lo, r);
    hi = std::max(hi, r);
  }
  std::printf("%s:%g:%g %s:%g:%g seeds 1..%d: mean %.2f %% min %.2f %% max %.2f %%\n", gkey.c_str(),
              A, B, nkey.c_str(), NA, NB, seeds, 100 * sum / seeds, 100 * lo, 100 * hi);
  return 0;
}
