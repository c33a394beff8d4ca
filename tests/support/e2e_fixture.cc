#include "tests/support/e2e_fixture.h"

#include <httplib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

namespace kpm::testing {

using Clock = std::chrono::steady_clock;

std::string RequireBuilt(const std::string& path, const std::string& what) {
  if (path.empty() || !std::filesystem::exists(path)) {
    FAIL(what << " is not built (path '" << path << "'): the end-to-end tests need it");
  }
  return path;
}

std::string Last4(std::string_view key) {
  return std::string(key.size() >= 4 ? key.substr(key.size() - 4) : key);
}

// --- MockProcess -------------------------------------------------------------------

MockProcess::MockProcess(const std::string& mock_binary, int threads) {
  auto spawned =
      StdioProcess::Spawn({{mock_binary, "--exit-on-stdin-eof", "--threads", std::to_string(threads)}, {}, {}});
  if (!spawned.has_value()) FAIL("cannot start mock-upstream: " << spawned.error().message);
  process_ = std::move(spawned).value();
  auto line = process_->ReadLine(kReadTimeout);
  INFO("mock stderr: " << process_->Stderr());
  REQUIRE(line.has_value());
  INFO("mock said: " << *line);
  Json port_line = Json::parse(*line, nullptr, false);
  REQUIRE(port_line.is_object());
  REQUIRE(port_line["port"].is_number_integer());
  port_ = port_line["port"].get<int>();
  REQUIRE(port_ > 0);
  control_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
  control_->set_connection_timeout(5, 0);
  control_->set_read_timeout(10, 0);
}

MockProcess::~MockProcess() {
  if (!process_) return;
  process_->CloseStdin();
  if (!process_->WaitExit(kExitTimeout)) process_->Kill();
}

httplib::Client& MockProcess::Control() { return *control_; }

std::string MockProcess::BaseUrl(std::string_view prefix) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(prefix);
}

std::string MockProcess::BaseUrlFor(std::string_view type) const {
  if (type == "openrouter") return BaseUrl("/api/v1");
  if (type == "gemini") return BaseUrl("/v1beta");
  return BaseUrl("/v1");
}

void MockProcess::Script(const std::string& key, const std::vector<std::string>& steps) {
  Json body = {{"key", key}, {"steps", steps}};
  auto res = Control().Post("/_mock/script", body.dump(), "application/json");
  REQUIRE(res);
  INFO(res->body);
  REQUIRE(res->status == 200);
}

void MockProcess::ScriptJson(const std::string& key, const Json& steps) {
  Json body = {{"key", key}, {"steps", steps}};
  auto res = Control().Post("/_mock/script", body.dump(), "application/json");
  REQUIRE(res);
  INFO(res->body);
  REQUIRE(res->status == 200);
}

void MockProcess::SetDefault(const std::string& key, const std::string& step) {
  Json body = {{"key", key}, {"step", step}};
  auto res = Control().Post("/_mock/default", body.dump(), "application/json");
  REQUIRE(res);
  INFO(res->body);
  REQUIRE(res->status == 200);
}

void MockProcess::Reset() {
  auto res = Control().Post("/_mock/reset", "", "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
}

Json MockProcess::Requests() {
  auto res = Control().Get("/_mock/requests");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  Json requests = Json::parse(res->body, nullptr, false);
  INFO(res->body);
  REQUIRE(requests.is_array());
  return requests;
}

std::vector<std::string> MockProcess::KeysSeen() {
  std::vector<std::string> seen;
  for (const auto& r : Requests()) {
    if (r.value("method", "") == "POST") seen.push_back(Last4(r.value("key_fingerprint", "")));
  }
  return seen;
}

std::vector<std::string> MockProcess::KeysSeenOn(std::string_view path_suffix) {
  std::vector<std::string> seen;
  for (const auto& r : Requests()) {
    std::string path = r.value("path", "");
    if (path.size() >= path_suffix.size() &&
        path.compare(path.size() - path_suffix.size(), path_suffix.size(), path_suffix) == 0) {
      seen.push_back(Last4(r.value("key_fingerprint", "")));
    }
  }
  return seen;
}

bool MockProcess::WaitForRequests(size_t count, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (Requests().size() >= count) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

std::string MockProcess::Stderr() const { return process_ ? process_->Stderr() : ""; }

// --- config ------------------------------------------------------------------------

std::string ConfigYaml(const std::vector<ProviderSpec>& providers, const std::string& top_extra) {
  std::string yaml = "providers:\n";
  for (const ProviderSpec& p : providers) {
    yaml += "  " + p.name + ":\n";
    yaml += "    type: " + p.type + "\n";
    if (!p.base_url.empty()) yaml += "    baseUrl: " + p.base_url + "\n";
    if (!p.model.empty()) yaml += "    model: " + p.model + "\n";
    if (!p.keys.empty()) {
      yaml += "    apiKey:\n";
      for (const auto& k : p.keys) {
        // A flow mapping ("{ key: …, name: … }") is a key object; anything else a scalar.
        yaml += (!k.empty() && k.front() == '{') ? "      - " + k + "\n" : "      - \"" + k + "\"\n";
      }
    }
    yaml += p.extra;
  }
  return yaml + top_extra;
}

ProviderSpec MockProvider(const MockProcess& mock, std::string name, std::string type, std::string model,
                          std::vector<std::string> keys, std::string extra) {
  ProviderSpec spec;
  spec.base_url = mock.BaseUrlFor(type);
  spec.name = std::move(name);
  spec.type = std::move(type);
  spec.model = std::move(model);
  spec.keys = std::move(keys);
  spec.extra = std::move(extra);
  return spec;
}

// --- E2eServer ---------------------------------------------------------------------

E2eServer::E2eServer(const std::string& binary, const std::string& config_text, ServerLaunch launch)
    : secrets_(std::move(launch.secrets)) {
  config_path_ = dir_.WriteFile(launch.config_name, config_text);
  std::vector<std::string> args = {"--config", config_path_};
  args.insert(args.end(), launch.extra_args.begin(), launch.extra_args.end());
  auto spawned = StdioProcess::Spawn(ServerOptions(binary, args, dir_.path(), launch.env, launch.unset_env));
  if (!spawned.has_value()) FAIL("cannot start keypool-mcp: " << spawned.error().message);
  process_ = std::move(spawned).value();
  session_ = std::make_unique<McpSession>(*process_);
}

E2eServer::~E2eServer() = default;

void E2eServer::Initialize() {
  auto reply = session_->Initialize("2025-06-18", kReadTimeout);
  INFO("stderr: " << process_->Stderr());
  REQUIRE(reply.has_value());
  INFO(reply->dump());
  REQUIRE(reply->contains("result"));
}

Json E2eServer::CallTool(std::string_view name, const Json& arguments) {
  auto reply = session_->CallTool(name, arguments, kReadTimeout);
  INFO("tools/call " << name << " " << arguments.dump() << "\nstderr: " << process_->Stderr());
  REQUIRE(reply.has_value());
  INFO(reply->dump());
  REQUIRE(reply->contains("result"));
  results_ += reply->dump();
  return (*reply)["result"];
}

Json E2eServer::Complete(const Json& arguments) { return CallTool("complete", arguments); }

std::map<std::string, Json> E2eServer::KeyStatus(const std::string& provider) {
  Json args = Json::object();
  if (!provider.empty()) args["provider"] = provider;
  Json result = CallTool("key_status", args);
  INFO(result.dump());
  CHECK_FALSE(result.value("isError", false));
  return KeysByLabel(result["structuredContent"]);
}

void E2eServer::CloseAndExpectCleanExit() {
  process_->CloseStdin();
  session_->DrainUntilEof(kExitTimeout);
  CHECK(process_->StdoutDone());
  CHECK(process_->WaitExit(kExitTimeout) == std::optional<int>(0));
  CheckTranscript();
}

void E2eServer::CheckTranscript() {
  process_->DrainStdout(milliseconds(0));
  INFO("stderr:\n" << process_->Stderr());
  for (const auto& bad : session_->bad_lines()) FAIL_CHECK("stdout line is not JSON-RPC 2.0: " << bad);
  const std::string& out = process_->StdoutSoFar();
  CHECK((out.empty() || out.back() == '\n'));
  CHECK(out.find('\r') == std::string::npos);
  if (auto leak = FindSecret(out, secrets_)) FAIL_CHECK("key material on stdout: " << *leak);
  if (auto leak = FindSecret(process_->Stderr(), secrets_)) FAIL_CHECK("key material on stderr: " << *leak);
  if (auto leak = FindSecret(results_, secrets_)) FAIL_CHECK("key material in a tool result: " << *leak);
}

// --- E2eRig ------------------------------------------------------------------------

E2eServer& E2eRig::Start(const std::vector<ProviderSpec>& providers, const std::string& top_extra,
                         ServerLaunch launch, bool initialize) {
  REQUIRE_FALSE(server_);
  server_ = std::make_unique<E2eServer>(binary_, ConfigYaml(providers, top_extra), std::move(launch));
  if (initialize) server_->Initialize();
  return *server_;
}

E2eServer& E2eRig::server() {
  REQUIRE(server_);
  return *server_;
}

// --- results -----------------------------------------------------------------------

std::string ResultText(const Json& result) {
  INFO(result.dump());
  REQUIRE(result.contains("content"));
  REQUIRE(result["content"].is_array());
  REQUIRE_FALSE(result["content"].empty());
  CHECK(result["content"][0]["type"] == "text");
  return result["content"][0].value("text", "");
}

std::vector<std::string> Outcomes(const Json& result) {
  INFO(result.dump());
  REQUIRE(result.contains("structuredContent"));
  const Json& attempts = result["structuredContent"]["attempts"];
  REQUIRE(attempts.is_array());
  std::vector<std::string> out;
  for (const auto& a : attempts) out.push_back(a.value("outcome", ""));
  return out;
}

std::map<std::string, Json> KeysByLabel(const Json& structured_content) {
  INFO(structured_content.dump());
  REQUIRE(structured_content.is_object());
  REQUIRE(structured_content["providers"].is_array());
  std::map<std::string, Json> keys;
  for (const auto& p : structured_content["providers"]) {
    REQUIRE(p["keys"].is_array());
    for (const auto& k : p["keys"]) keys[k.value("label", "")] = k;
  }
  return keys;
}

std::unique_ptr<StdioProcess> RunToExit(const std::string& binary, const std::vector<std::string>& args,
                                        const TempDir& home, const std::map<std::string, std::string>& env,
                                        const std::vector<std::string>& unset_env) {
  auto spawned = StdioProcess::Spawn(ServerOptions(binary, args, home.path(), env, unset_env));
  if (!spawned.has_value()) FAIL("cannot start " << binary << ": " << spawned.error().message);
  auto p = std::move(spawned).value();
  p->CloseStdin();
  p->DrainStdout(kExitTimeout);
  auto code = p->WaitExit(kExitTimeout);
  INFO("stdout: " << p->StdoutSoFar() << "\nstderr: " << p->Stderr());
  REQUIRE(code.has_value());
  return p;
}

}  // namespace kpm::testing
