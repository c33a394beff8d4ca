// mock-upstream: the scripted mock upstream as a program, for the demo and the
// end-to-end tests (docs/mock-upstream.md).
//
//   mock-upstream [--port N] [--threads N] [--script FILE.json] [--exit-on-stdin-eof]
//
// Prints exactly one line {"port": N} to stdout once it accepts requests, then logs one
// line per request to stderr (key fingerprints only). Exits 0 on SIGTERM/SIGINT, or on
// stdin EOF with --exit-on-stdin-eof. Arguments are parsed by hand: no CLI11 in tests.

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/support/mock_upstream.h"

namespace {

using kpm::testing::MockStep;
using kpm::testing::MockUpstream;
using kpm::testing::ParseMockStepJson;

constexpr const char* kUsage =
    "usage: mock-upstream [--port N] [--threads N] [--script FILE.json] [--exit-on-stdin-eof]\n"
    "  --port N             listen on 127.0.0.1:N (default: an ephemeral port)\n"
    "  --threads N          requests served at once (default 32; each slow one holds one)\n"
    "  --script FILE.json   {\"KEY\": [steps…] | \"default step\", …} loaded at start\n"
    "  --exit-on-stdin-eof  exit when stdin closes (so a parent's death ends the mock)\n"
    "Prints {\"port\": N} on stdout once listening. Steps: docs/mock-upstream.md.\n";

struct Options {
  int port = 0;
  std::string script;
  bool exit_on_stdin_eof = false;
  int threads = 32;
};

/// Returns false (after printing why) when the arguments are not usable.
bool ParseArgs(int argc, char** argv, Options* opts) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "mock-upstream: %s needs a value\n%s", name, kUsage);
        return nullptr;
      }
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--port") {
      const char* v = value("--port");
      if (!v) return false;
      char* end = nullptr;
      long port = std::strtol(v, &end, 10);
      if (*v == '\0' || *end != '\0' || port < 0 || port > 65535) {
        std::fprintf(stderr, "mock-upstream: bad --port '%s'\n", v);
        return false;
      }
      opts->port = static_cast<int>(port);
    } else if (arg == "--script") {
      const char* v = value("--script");
      if (!v) return false;
      opts->script = v;
    } else if (arg == "--threads") {
      const char* v = value("--threads");
      if (!v) return false;
      char* end = nullptr;
      long n = std::strtol(v, &end, 10);
      if (*v == '\0' || *end != '\0' || n < 1 || n > 4096) {
        std::fprintf(stderr, "mock-upstream: bad --threads '%s' (1..4096)\n", v);
        return false;
      }
      opts->threads = static_cast<int>(n);
    } else if (arg == "--exit-on-stdin-eof") {
      opts->exit_on_stdin_eof = true;
    } else {
      std::fprintf(stderr, "mock-upstream: unknown argument '%s'\n%s", arg.c_str(), kUsage);
      return false;
    }
  }
  return true;
}

/// Loads {key: [steps] | "default step"} into the mock; prints the problem and returns
/// false on any bad file, shape or step.
bool LoadScript(const std::string& path, MockUpstream* mock) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "mock-upstream: cannot read %s\n", path.c_str());
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json doc = nlohmann::json::parse(text.str(), nullptr, false);
  if (!doc.is_object()) {
    std::fprintf(stderr, "mock-upstream: %s: expected a JSON object {key: [steps]}\n",
                 path.c_str());
    return false;
  }
  for (const auto& [key, value] : doc.items()) {
    if (value.is_array()) {
      std::vector<MockStep> steps;
      for (const auto& s : value) {
        auto step = ParseMockStepJson(s);
        if (!step) {
          std::fprintf(stderr, "mock-upstream: %s: %s\n", path.c_str(),
                       step.error().message.c_str());
          return false;
        }
        steps.push_back(std::move(step.value()));
      }
      mock->ScriptParsed(key, std::move(steps));
    } else {
      auto step = ParseMockStepJson(value);  // a lone step is the key's default
      if (!step) {
        std::fprintf(stderr, "mock-upstream: %s: %s\n", path.c_str(),
                     step.error().message.c_str());
        return false;
      }
      mock->SetDefaultParsed(key, std::move(step.value()));
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  if (!ParseArgs(argc, argv, &opts)) return 2;

  // Block the stop signals before any thread starts, so every thread inherits the mask
  // and sigwait() below is the only place they are taken.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  MockUpstream mock;
  if (!opts.script.empty() && !LoadScript(opts.script, &mock)) return 1;
  mock.SetObserver([](const kpm::testing::RecordedRequest& r) {
    std::string line = "mock-upstream: " + r.method + " " + r.path + " " +
                       std::string(kpm::testing::FlavorName(r.flavor)) + " key=" +
                       r.key_fingerprint + " model=" + (r.model.empty() ? "-" : r.model) +
                       (r.stream ? " stream" : "") + " step=" + r.step + " -> " +
                       (r.status ? std::to_string(r.status) : std::string("no answer")) + "\n";
    std::fputs(line.c_str(), stderr);  // one write per line: lines from threads don't mix
  });
  int port = mock.Start(opts.port, opts.threads);
  if (port == 0) {
    std::fprintf(stderr, "mock-upstream: cannot listen on 127.0.0.1:%d\n", opts.port);
    return 1;
  }
  std::printf("{\"port\": %d}\n", port);
  std::fflush(stdout);

  if (opts.exit_on_stdin_eof) {
    // Detached: at exit it may still sit in read(), which the process end takes care of.
    std::thread([] {
      char buf[256];
      while (read(STDIN_FILENO, buf, sizeof buf) > 0) {
      }
      kill(getpid(), SIGTERM);
    }).detach();
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::fprintf(stderr, "mock-upstream: stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  mock.Stop();
  return 0;
}
