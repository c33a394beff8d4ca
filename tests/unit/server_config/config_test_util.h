#pragma once
/// What the config tests share: a fake environment, reading a file whole, and a
/// temporary folder removed at the end of the test.

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>

#include "server/config.h"

namespace kpm::server::testing {

/// An environment holding exactly `vars`.
inline EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

inline std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// A fresh folder under the system temp dir, removed at the end of the test.
struct ConfigTempDir {
  std::filesystem::path path;
  ConfigTempDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() /
           ("kpm-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~ConfigTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  ConfigTempDir(const ConfigTempDir&) = delete;
  ConfigTempDir& operator=(const ConfigTempDir&) = delete;
};

}  // namespace kpm::server::testing
