// The test binary's main: Catch2's, after one line of set-up.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <spdlog/spdlog.h>

int main(int argc, char* argv[]) {
  // spdlog's registry is a function-local static inside the (uninstrumented) shared
  // library: created here, before any test starts a thread, ThreadSanitizer does not see
  // its first use race between the threads that log. The server's main does the same
  // (InstallStderrLogger is its first statement).
  spdlog::default_logger();
  return Catch::Session().run(argc, argv);
}
