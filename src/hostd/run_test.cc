#include "hostd/run.h"

#include <gtest/gtest.h>

namespace hami::hostd {
namespace {

Status Aborted(const std::string& message) { return Status(StatusCode::kAborted, message); }

TEST(RunTest, InterruptExitCodeReadsTheWaitsOwnStatus) {
  EXPECT_EQ(InterruptExitCode(Aborted("130")), 130);  // SIGINT
  EXPECT_EQ(InterruptExitCode(Aborted("143")), 143);  // SIGTERM
}

// A daemon's ABORTED error body carries free text; it used to reach std::stoi and throw.
TEST(RunTest, InterruptExitCodeRejectsDaemonAbortedText) {
  EXPECT_EQ(InterruptExitCode(Aborted("slice was released by an admin")), std::nullopt);
  EXPECT_EQ(InterruptExitCode(Aborted("")), std::nullopt);
  EXPECT_EQ(InterruptExitCode(Aborted("130 seconds")), std::nullopt);
  EXPECT_EQ(InterruptExitCode(Aborted("99999999999999999999")), std::nullopt);
  EXPECT_EQ(InterruptExitCode(Aborted("-1")), std::nullopt);
  EXPECT_EQ(InterruptExitCode(Aborted("0")), std::nullopt);
  EXPECT_EQ(InterruptExitCode(Aborted("255")), std::nullopt);
}

TEST(RunTest, InterruptExitCodeIgnoresOtherCodes) {
  EXPECT_EQ(InterruptExitCode(Status(StatusCode::kUnavailable, "130")), std::nullopt);
  EXPECT_EQ(InterruptExitCode(Status()), std::nullopt);
}

}  // namespace
}  // namespace hami::hostd
