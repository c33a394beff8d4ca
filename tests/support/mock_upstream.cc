#include "tests/support/mock_upstream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "common/redact.h"

namespace kpm::testing {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool EndsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// A step that failed to parse still has to answer something loud.
MockStep InvalidStep(const std::string& source, const std::string& why) {
  MockStep step;
  step.kind = MockStep::Kind::kRaw;
  step.source = source;
  step.status = 599;
  step.body = Json{{"error", "mock-upstream: " + why}}.dump();
  std::fprintf(stderr, "mock-upstream: %s\n", why.c_str());
  return step;
}

MockStep ParseOrInvalid(const std::string& text) {
  auto parsed = ParseMockStep(text);
  if (parsed) return std::move(parsed.value());
  return InvalidStep(text, parsed.error().message);
}

/// The server-side socket of the connection `req` came on, found by its address pair.
/// cpp-httplib 0.11 hands handlers no socket, yet `hang` must notice a client that
/// gave up and `drop` must close without an answer; -1 when not found.
int FindConnection(const httplib::Request& req) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = -1;
    try {
      fd = std::stoi(entry.path().filename().string());
    } catch (...) {
      continue;
    }
    sockaddr_storage local{}, peer{};
    socklen_t local_len = sizeof local, peer_len = sizeof peer;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) continue;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) continue;
    auto port_of = [](const sockaddr_storage& a) -> int {
      if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
      if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
      return -1;
    };
    if (port_of(local) == req.local_port && port_of(peer) == req.remote_port) return fd;
  }
  return -1;
}

bool PeerClosed(int fd) {
  char c;
  ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

std::string KeyOf(const httplib::Request& req, bool* in_query) {
  *in_query = false;
  std::string auth = req.get_header_value("Authorization");
  if (StartsWith(auth, "Bearer ")) return auth.substr(7);
  if (req.has_header("x-api-key")) return req.get_header_value("x-api-key");
  if (req.has_header("x-goog-api-key")) return req.get_header_value("x-goog-api-key");
  if (req.has_param("key")) {
    *in_query = true;
    return req.get_param_value("key");
  }
  return "";
}

/// Which API a request speaks, from its path (and for /models its auth header).
std::optional<std::pair<Flavor, Endpoint>> Route(const httplib::Request& req) {
  const std::string& p = req.path;
  const bool openrouter_base = StartsWith(p, "/api/");
  if (req.method == "POST") {
    if (EndsWith(p, "/chat/completions"))
      return std::pair{openrouter_base ? Flavor::kOpenRouter : Flavor::kOpenAi, Endpoint::kChat};
    if (EndsWith(p, "/messages")) return std::pair{Flavor::kAnthropic, Endpoint::kChat};
    if (p.find("/models/") != std::string::npos &&
        (EndsWith(p, ":generateContent") || EndsWith(p, ":streamGenerateContent")))
      return std::pair{Flavor::kGemini, Endpoint::kChat};
    return std::nullopt;
  }
  if (req.method != "GET") return std::nullopt;
  if (EndsWith(p, "/key")) return std::pair{Flavor::kOpenRouter, Endpoint::kKey};
  if (!EndsWith(p, "/models")) return std::nullopt;
  Flavor flavor = Flavor::kOpenAi;
  if (req.has_header("x-goog-api-key") || req.has_param("key")) {
    flavor = Flavor::kGemini;
  } else if (req.has_header("x-api-key") || req.has_header("anthropic-version")) {
    flavor = Flavor::kAnthropic;
  } else if (openrouter_base) {
    flavor = Flavor::kOpenRouter;
  } else if (!req.has_header("Authorization") && p.find("/v1beta") != std::string::npos) {
    flavor = Flavor::kGemini;
  }
  return std::pair{flavor, Endpoint::kModels};
}

}  // namespace

struct MockUpstream::Impl {
  struct KeyScript {
    std::optional<std::deque<MockStep>> queue;  // unset: not scripted yet ("*" is copied in)
    std::optional<MockStep> fallback;
  };

  httplib::Server server;
  std::thread thread;
  int port = 0;
  bool started = false;

  mutable std::mutex mu;
  std::condition_variable cv;  // wakes delays, gaps and hangs on Stop() and Reset()
  bool stopping = false;
  uint64_t generation = 0;     // bumped by Reset()
  std::map<std::string, KeyScript> scripts;
  std::vector<RecordedRequest> requests;
  uint64_t next_id = 1;
  std::function<void(const RecordedRequest&)> observer;

  MockStep NextStep(const std::string& key);
  void Serve(const httplib::Request& req, httplib::Response& res);
  void Answer(const httplib::Request& req, httplib::Response& res, const MockReply& reply);
  void Hang(const httplib::Request& req, httplib::Response& res, int limit_ms);
  /// Sleeps `ms`; false when the server began stopping meanwhile.
  bool Sleep(int ms);
  void InstallControl();
};

MockStep MockUpstream::Impl::NextStep(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu);
  KeyScript& script = scripts[key];
  if (!script.queue) {
    script.queue.emplace();
    auto star = scripts.find("*");
    if (key != "*" && star != scripts.end() && star->second.queue) *script.queue = *star->second.queue;
  }
  if (!script.queue->empty()) {
    MockStep step = std::move(script.queue->front());
    script.queue->pop_front();
    return step;
  }
  if (script.fallback) return *script.fallback;
  auto star = scripts.find("*");
  if (star != scripts.end() && star->second.fallback) return *star->second.fallback;
  MockStep ok;
  ok.source = "ok";
  return ok;
}

bool MockUpstream::Impl::Sleep(int ms) {
  std::unique_lock<std::mutex> lock(mu);
  cv.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping; });
  return !stopping;
}

void MockUpstream::Impl::Hang(const httplib::Request& req, httplib::Response& res, int limit_ms) {
  int fd = FindConnection(req);
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lock(mu);
    gen = generation;
  }
  auto deadline = limit_ms > 0 ? Clock::now() + std::chrono::milliseconds(limit_ms)
                               : Clock::time_point::max();
  while (Clock::now() < deadline) {
    {
      std::unique_lock<std::mutex> lock(mu);
      if (cv.wait_for(lock, std::chrono::milliseconds(20),
                      [&] { return stopping || generation != gen; }))
        break;
    }
    if (fd >= 0 && PeerClosed(fd)) break;
  }
  if (fd >= 0) {
    ::shutdown(fd, SHUT_RDWR);  // whatever httplib writes next goes nowhere
  } else {
    res.status = 599;
    res.set_content("{\"error\":\"mock-upstream: hang ended\"}", "application/json");
  }
}

void MockUpstream::Impl::Answer(const httplib::Request& req, httplib::Response& res,
                                const MockReply& reply) {
  if (reply.delay_ms > 0 && !Sleep(reply.delay_ms)) {
    int fd = FindConnection(req);
    if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
    return;
  }
  if (reply.hang) return Hang(req, res, reply.hang_ms);
  if (reply.drop) {
    int fd = FindConnection(req);
    if (fd >= 0) {
      ::shutdown(fd, SHUT_RDWR);
      return;
    }
    res.status = 599;  // not expected on Linux: at least say what should have happened
    res.set_content("{\"error\":\"mock-upstream: drop could not find its socket\"}",
                    "application/json");
    return;
  }
  res.status = reply.status;
  for (const auto& [name, value] : reply.headers) res.set_header(name, value);
  if (!reply.chunked) {
    res.set_content(reply.body, reply.content_type);
    return;
  }
  struct StreamState {
    std::vector<std::string> pieces;
    size_t next = 0;
    int gap_ms = 0;
    bool cut = false;
    std::string repeat;
    int64_t repeat_bytes = 0;
    int64_t repeated = 0;
  };
  auto state = std::make_shared<StreamState>(
      StreamState{reply.pieces, 0, reply.gap_ms, reply.cut, reply.repeat, reply.repeat_bytes, 0});
  res.set_chunked_content_provider(
      reply.content_type, [this, state](size_t /*offset*/, httplib::DataSink& sink) {
        if (state->next < state->pieces.size()) {
          if (state->next > 0 && state->gap_ms > 0 && !Sleep(state->gap_ms)) return false;
          const std::string& piece = state->pieces[state->next++];
          return sink.write(piece.data(), piece.size());
        }
        if (!state->repeat.empty() && (state->repeat_bytes == 0 || state->repeated < state->repeat_bytes)) {
          if (!Sleep(0)) return false;  // the server is stopping
          size_t n = state->repeat.size();
          if (state->repeat_bytes > 0) n = std::min<int64_t>(n, state->repeat_bytes - state->repeated);
          state->repeated += static_cast<int64_t>(n);
          return sink.write(state->repeat.data(), n);  // false once the client has left
        }
        if (state->cut) return false;  // no terminating chunk: the client sees a cut
        sink.done();
        return true;
      });
}

void MockUpstream::Impl::Serve(const httplib::Request& req, httplib::Response& res) {
  RecordedRequest rec;
  rec.time = std::chrono::system_clock::now();
  rec.method = req.method;
  rec.path = req.path;
  rec.body = req.body;
  for (const auto& [name, value] : req.headers) {
    std::string lower = Lower(name);
    if (lower == "authorization" || lower == "x-api-key" || lower == "x-goog-api-key" ||
        lower == "proxy-authorization" || lower == "cookie" || lower == "remote_addr" ||
        lower == "remote_port" || lower == "local_addr" || lower == "local_port")
      continue;
    rec.headers[lower] = value;
  }
  std::string key = KeyOf(req, &rec.key_in_query);
  rec.key_fingerprint = kpm::Fingerprint(key);

  auto route = Route(req);
  MockReply reply;
  if (!route) {
    rec.step = "(no route)";
    reply.status = 404;
    reply.body = Json{{"error", "mock-upstream: no route for " + req.method + " " + req.path}}.dump();
  } else {
    MockCall call;
    call.flavor = route->first;
    call.endpoint = route->second;
    call.key = key;
    call.now = rec.time;
    call.prompt_tokens = static_cast<int>(std::max<size_t>(1, req.body.size() / 4));
    Json body = Json::parse(req.body, nullptr, false);
    if (call.flavor == Flavor::kGemini && call.endpoint == Endpoint::kChat) {
      size_t at = req.path.rfind("/models/") + 8;
      call.model = req.path.substr(at, req.path.rfind(':') - at);
      call.stream = EndsWith(req.path, ":streamGenerateContent");
      call.gemini_sse = req.get_param_value("alt") == "sse";
    } else if (body.is_object()) {
      // Checked by hand: nlohmann's value() throws on a wrong type, and this must not.
      auto flag = [](const Json& obj, const char* name) {
        return obj.is_object() && obj.contains(name) && obj[name].is_boolean() &&
               obj[name].get<bool>();
      };
      if (body.contains("model") && body["model"].is_string())
        call.model = body["model"].get<std::string>();
      call.stream = flag(body, "stream");
      if (body.contains("stream_options"))
        call.include_usage = flag(body["stream_options"], "include_usage");
    }
    MockStep step = NextStep(key);
    {
      std::lock_guard<std::mutex> lock(mu);
      call.id = next_id++;
    }
    reply = BuildMockReply(call, step);
    rec.flavor = call.flavor;
    rec.model = call.model;
    rec.stream = call.stream;
    rec.step = step.source.empty() ? "ok" : step.source;
  }
  rec.status = reply.hang || reply.drop ? 0 : reply.status;
  {
    std::lock_guard<std::mutex> lock(mu);
    requests.push_back(rec);
  }
  if (observer) observer(rec);
  Answer(req, res, reply);
}

void MockUpstream::Impl::InstallControl() {
  auto reply_json = [](httplib::Response& res, int status, const Json& body) {
    res.status = status;
    res.set_content(body.dump(), "application/json");
  };
  // POST /_mock/script {"key": k, "steps": [...]} or {"keys": {k: [...]}}
  server.Post("/_mock/script", [this, reply_json](const httplib::Request& req,
                                                  httplib::Response& res) {
    Json body = Json::parse(req.body, nullptr, false);
    std::vector<std::pair<std::string, Json>> lists;
    if (body.is_object() && body.contains("key") && body["key"].is_string() &&
        body.contains("steps")) {
      lists.emplace_back(body["key"].get<std::string>(), body["steps"]);
    } else if (body.is_object() && body.contains("keys") && body["keys"].is_object()) {
      for (const auto& [k, v] : body["keys"].items()) lists.emplace_back(k, v);
    } else {
      return reply_json(res, 400, {{"error", "expected {\"key\", \"steps\"} or {\"keys\": {}}"}});
    }
    std::vector<std::pair<std::string, std::vector<MockStep>>> parsed;
    for (const auto& [key, steps] : lists) {
      if (!steps.is_array())
        return reply_json(res, 400, {{"error", "steps of '" + key + "' must be an array"}});
      std::vector<MockStep> out;
      for (const auto& s : steps) {
        auto step = ParseMockStepJson(s);
        if (!step) return reply_json(res, 400, {{"error", step.error().message}});
        out.push_back(std::move(step.value()));
      }
      parsed.emplace_back(key, std::move(out));
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto& [key, steps] : parsed)
        scripts[key].queue = std::deque<MockStep>(steps.begin(), steps.end());
    }
    reply_json(res, 200, {{"ok", true}});
  });
  // POST /_mock/default {"key": k, "step": s}
  server.Post("/_mock/default", [this, reply_json](const httplib::Request& req,
                                                   httplib::Response& res) {
    Json body = Json::parse(req.body, nullptr, false);
    if (!body.is_object() || !body.contains("key") || !body["key"].is_string() ||
        !body.contains("step"))
      return reply_json(res, 400, {{"error", "expected {\"key\", \"step\"}"}});
    auto step = ParseMockStepJson(body["step"]);
    if (!step) return reply_json(res, 400, {{"error", step.error().message}});
    {
      std::lock_guard<std::mutex> lock(mu);
      scripts[body["key"].get<std::string>()].fallback = std::move(step.value());
    }
    reply_json(res, 200, {{"ok", true}});
  });
  server.Get("/_mock/requests", [this](const httplib::Request&, httplib::Response& res) {
    std::string out = "[";
    {
      std::lock_guard<std::mutex> lock(mu);
      for (size_t i = 0; i < requests.size(); ++i) {
        if (i) out += ',';
        out += RecordedRequestJson(requests[i]);
      }
    }
    res.set_content(out + "]", "application/json");
  });
  server.Post("/_mock/reset", [this, reply_json](const httplib::Request&, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(mu);
      scripts.clear();
      requests.clear();
      ++generation;
    }
    cv.notify_all();
    reply_json(res, 200, {{"ok", true}});
  });
}

MockUpstream::MockUpstream() : impl_(std::make_unique<Impl>()) {}

MockUpstream::~MockUpstream() { Stop(); }

int MockUpstream::Start(int port, int threads) {
  Impl& m = *impl_;
  if (m.started) return 0;
  std::signal(SIGPIPE, SIG_IGN);
  // Hanging and slow requests each hold a worker: more than the default 8, so a test
  // with a few hangs still gets its other requests served.
  const size_t workers = static_cast<size_t>(std::max(threads, 1));
  m.server.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  m.server.set_keep_alive_max_count(100);
  // Debian's compiled httplib leaves Nagle on and writes headers and body apart:
  // without this every reused-connection request waits ~40 ms for a delayed ACK.
  m.server.set_tcp_nodelay(true);
  m.InstallControl();
  auto serve = [&m](const httplib::Request& req, httplib::Response& res) { m.Serve(req, res); };
  m.server.Post(".*", serve);
  m.server.Get(".*", serve);

  int bound = 0;
  if (port == 0) {
    bound = m.server.bind_to_any_port("127.0.0.1");
  } else if (m.server.bind_to_port("127.0.0.1", port)) {
    bound = port;
  }
  if (bound <= 0) return 0;
  m.port = bound;
  m.started = true;
  m.thread = std::thread([&m] { m.server.listen_after_bind(); });
  // cpp-httplib 0.11 has no wait_until_ready().
  auto give_up = Clock::now() + std::chrono::seconds(5);
  while (!m.server.is_running() && Clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return m.server.is_running() ? bound : 0;
}

void MockUpstream::Stop() {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.stopping = true;
  }
  m.cv.notify_all();
  if (m.started) m.server.stop();
  if (m.thread.joinable()) m.thread.join();
}

int MockUpstream::port() const { return impl_->port; }

std::string MockUpstream::base_url(std::string_view prefix) const {
  return "http://127.0.0.1:" + std::to_string(impl_->port) + std::string(prefix);
}

void MockUpstream::Script(std::string key, std::vector<std::string> steps) {
  std::vector<MockStep> parsed;
  for (const std::string& s : steps) parsed.push_back(ParseOrInvalid(s));
  ScriptParsed(std::move(key), std::move(parsed));
}

void MockUpstream::ScriptParsed(std::string key, std::vector<MockStep> steps) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->scripts[std::move(key)].queue = std::deque<MockStep>(std::make_move_iterator(steps.begin()),
                                                              std::make_move_iterator(steps.end()));
}

void MockUpstream::SetDefault(std::string key, std::string step) {
  SetDefaultParsed(std::move(key), ParseOrInvalid(step));
}

void MockUpstream::SetDefaultParsed(std::string key, MockStep step) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->scripts[std::move(key)].fallback = std::move(step);
}

std::vector<RecordedRequest> MockUpstream::Requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->requests;
}

void MockUpstream::Reset() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->scripts.clear();
    impl_->requests.clear();
    ++impl_->generation;
  }
  impl_->cv.notify_all();
}

void MockUpstream::SetObserver(std::function<void(const RecordedRequest&)> observer) {
  impl_->observer = std::move(observer);
}

std::string RecordedRequestJson(const RecordedRequest& r) {
  Json j = {{"method", r.method},
            {"path", r.path},
            {"key_fingerprint", r.key_fingerprint},
            {"flavor", FlavorName(r.flavor)},
            {"model", r.model},
            {"stream", r.stream},
            {"status", r.status},
            {"step", r.step},
            {"key_in_query", r.key_in_query},
            {"headers", r.headers},
            {"body", r.body},
            {"time_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                            r.time.time_since_epoch()).count()}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace kpm::testing
