// The C++ runtime pieces libvgpu.so carries instead of libstdc++'s (cxx_runtime.cc): this test
// binary links them, so its own function-local statics go through them too.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

std::atomic<int> g_constructed{0};

struct Slow {
  Slow() {
    ++g_constructed;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    value = 42;
  }
  int value = 0;
};

int SlowValue() {
  static Slow s;
  return s.value;
}

TEST(CxxRuntimeTest, AStaticIsInitialisedOnceWhileOtherThreadsWait) {
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (SlowValue() != 42) ++wrong;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(g_constructed.load(), 1);
  EXPECT_EQ(wrong.load(), 0);
}

int g_attempts = 0;
struct FailsOnce {
  FailsOnce() {
    if (++g_attempts == 1) throw std::runtime_error("first");
  }
};

int FailsOnceAttempts() {
  static FailsOnce f;
  return g_attempts;
}

TEST(CxxRuntimeTest, AnInitialisationThatFailedIsTriedAgain) {
  EXPECT_THROW(FailsOnceAttempts(), std::runtime_error);  // __cxa_guard_abort
  EXPECT_EQ(FailsOnceAttempts(), 2);
  EXPECT_EQ(FailsOnceAttempts(), 2);  // initialised now
}

int Recursive(int depth);
struct Reenters {
  explicit Reenters(int depth) { Recursive(depth + 1); }
};
int Recursive(int depth) {
  static Reenters r(depth);
  return depth;
}

TEST(CxxRuntimeTest, AnInitialiserThatReachesItsOwnStaticEndsTheProcessInsteadOfHanging) {
  EXPECT_DEATH(Recursive(0), "recursive initialisation of a function-local static");
}

TEST(CxxRuntimeTest, NewOfZeroBytesGivesDistinctPointers) {
  void* a = ::operator new(0);
  void* b = ::operator new(0);
  EXPECT_NE(a, nullptr);
  EXPECT_NE(a, b);
  ::operator delete(a);
  ::operator delete (b, std::size_t{0});
}

}  // namespace
