#include "mcp/mcp_server.h"

#include <algorithm>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

#include "common/cancel.h"
#include "mcp/json_schema.h"

namespace kpm::mcp {

using protocol::Message;
using protocol::RpcError;

/// One tools/call in flight.
struct McpServer::Call {
  nlohmann::json id;
  std::string id_text;  // Message::id_text
  std::string id_key;
  const Tool* tool = nullptr;
  nlohmann::json arguments;
  nlohmann::json progress_token;  // null: the client asked for no progress
  bool modern = false;            // a 2026-07-28 request: modern result shape, its own log level
  std::optional<protocol::LogLevel> log_level;  // modern: the envelope's logLevel (none: no logs)
  CancelToken cancel;
  bool cancelled_by_client = false;  // guarded by calls_mu_: suppresses the reply
  std::atomic<bool> done{false};     // reply built: no more notifications
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();  // arrival
  std::size_t queued_bytes = 0;  // its request line, while it waits in the queue

  std::mutex progress_mu;  // orders this call's progress notifications on the wire
  bool progress_sent = false;
  double progress_high = 0;
  std::chrono::steady_clock::time_point progress_last{};
  std::string progress_kind;
};

namespace {

/// The "kind" of a progress message: the text without its digits, so
/// "openai#2: 812 chars" and "openai#2: 900 chars" are the same kind while
/// "openai#1 rate_limited, trying openai#2" is another.
std::string MessageKind(const std::string& message) {
  std::string kind;
  for (char c : message) {
    if (c < '0' || c > '9') kind.push_back(c);
  }
  return kind;
}

protocol::LogLevel ToolLogLevel(std::string_view name) {
  if (auto l = protocol::ParseLogLevel(name)) return *l;
  if (name == "warn") return protocol::LogLevel::kWarning;
  return protocol::LogLevel::kInfo;
}

}  // namespace

McpServer::McpServer(McpServerOptions options, const ToolRegistry& tools, Transport& transport)
    : options_(std::move(options)),
      tools_(tools),
      transport_(transport),
      own_loop_(options_.loop == nullptr ? std::make_unique<fiber::Loop>() : nullptr),
      loop_(options_.loop != nullptr ? *options_.loop : *own_loop_),
      log_level_(static_cast<int>(options_.initial_log_level)),
      instructions_(options_.instructions),
      outbox_(transport) {
  options_.max_concurrent_calls = std::max<std::size_t>(options_.max_concurrent_calls, 1);
  options_.tools_page_size = std::max<std::size_t>(options_.tools_page_size, 1);
}

McpServer::~McpServer() {
  Stop();
  WaitForCalls();
  outbox_.Close();
}

void McpServer::WaitForCalls() {
  std::unique_lock<std::mutex> lock(calls_mu_);
  idle_cv_.wait(lock, [this] { return running_ == 0 && queue_.empty(); });
}

int McpServer::Run() {
  outbox_.Start();
  std::string line;
  while (!stopping_.load()) {
    const auto status = transport_.ReadLine(line);
    if (status == Transport::ReadStatus::kClosed) break;
    if (status == Transport::ReadStatus::kTooLong) {
      // `line` is the head and the tail of the line: its id, when there, gets the
      // error, so the client is not left waiting for a reply that never comes.
      const std::size_t cut = line.find('\n');
      const std::string_view excerpt(line);
      const Message msg = protocol::DecodeTooLong(
          excerpt.substr(0, cut), cut == std::string::npos ? std::string_view() : excerpt.substr(cut + 1),
          transport_.max_line_bytes());
      spdlog::warn("dropped an input line over the size limit ({} bytes), id={}", transport_.max_line_bytes(),
                   msg.id_text.empty() ? protocol::IdKey(msg.id) : msg.id_text);
      Write(protocol::EncodeError(msg.id, msg.error, msg.id_text));
      continue;
    }
    HandleLine(line);
  }
  spdlog::debug("input closed; waiting for calls in flight");
  WaitForCalls();  // every running and queued call runs to its reply first
  outbox_.Close();  // and writes every reply before Run returns
  return 0;
}

void McpServer::Stop() {
  if (stopping_.exchange(true)) return;
  transport_.Interrupt();
  std::lock_guard<std::mutex> lock(calls_mu_);
  for (auto& [key, call] : calls_) call->cancel.Cancel();
}

void McpServer::HandleLine(const std::string& line) {
  Message msg = protocol::Decode(line);
  switch (msg.kind) {
    case Message::Kind::kRequest:
      HandleRequest(msg, line.size());
      return;
    case Message::Kind::kNotification:
      HandleNotification(msg);
      return;
    case Message::Kind::kIgnored:
      spdlog::debug("ignored a message: {}", msg.error.message);
      return;
    case Message::Kind::kInvalid:
      spdlog::debug("rejected a message: {}", msg.error.message);
      Write(protocol::EncodeError(msg.id, msg.error, msg.id_text));
      return;
  }
}

void McpServer::HandleRequest(const Message& msg, std::size_t bytes) {
  static const std::pair<std::string_view, Method> kMethods[] = {
      {"initialize", &McpServer::OnInitialize},
      {"ping", &McpServer::OnPing},
      {"tools/list", &McpServer::OnListTools},
      {"logging/setLevel", &McpServer::OnSetLevel},
      {"server/discover", &McpServer::OnDiscover},
  };
  // The era first (the SDK's ladder: version, then envelope, then method, then params).
  const protocol::RequestEra era = protocol::ClassifyRequest(msg.params);
  if (era.kind == protocol::RequestEra::Kind::kRejected) {
    spdlog::debug("{} id={} rejected: {}", msg.method, protocol::IdKey(msg.id), era.error.message);
    SendReply(msg.id, msg.id_text, {nullptr, era.error});
    return;
  }
  const protocol::RequestEnvelope* modern = era.kind == protocol::RequestEra::Kind::kModern ? &era.envelope : nullptr;
  if (modern != nullptr && modern->client_name) NoteClient(*modern->client_name, modern->client_version, false);
  if (modern != nullptr && !protocol::IsModernMethod(msg.method)) {
    // ping, initialize, logging/setLevel are gone from 2026-07-28 (changelog, major 2 and 5).
    SendReply(msg.id, msg.id_text,
              {nullptr,
               RpcError::MethodNotFound(msg.method + " (not in protocol revision " + modern->protocol_version + ")")});
    return;
  }
  if (msg.method == "tools/call") {
    StartToolCall(msg, bytes, modern);
    return;
  }
  const auto started = std::chrono::steady_clock::now();
  Answer answer;
  answer.error = RpcError::MethodNotFound(msg.method);
  for (const auto& [name, method] : kMethods) {
    if (name != msg.method) continue;
    // One of the two catch-alls (STYLE.md §3): a bug answers -32603, details to stderr.
    try {
      answer = (this->*method)(msg.params, modern);
    } catch (const std::exception& e) {
      spdlog::error("{} failed: {}", msg.method, e.what());
      answer = Answer{nullptr, RpcError::InternalError()};
    } catch (...) {
      spdlog::error("{} failed with an unknown exception", msg.method);
      answer = Answer{nullptr, RpcError::InternalError()};
    }
    break;
  }
  SendReply(msg.id, msg.id_text, answer, modern != nullptr);
  spdlog::debug(
      "{} id={} {}{} in {} ms", msg.method, protocol::IdKey(msg.id), modern != nullptr ? "(modern) " : "",
      answer.error ? std::to_string(answer.error->code) : "ok",
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count());
}

void McpServer::HandleNotification(const Message& msg) {
  if (msg.method == "notifications/initialized") return;  // nothing waits for it
  if (msg.method == "notifications/cancelled") {
    const auto id = protocol::ParseCancelledRequestId(msg.params);
    if (!id) return;
    std::lock_guard<std::mutex> lock(calls_mu_);
    const auto it = calls_.find(protocol::IdKey(*id));
    if (it == calls_.end()) return;  // already answered, or never a tool call
    std::shared_ptr<Call> call = it->second;
    call->cancelled_by_client = true;
    call->cancel.Cancel();
    spdlog::debug("call id={} cancelled by the client", it->first);
    // One still queued never starts: it is forgotten here, with no reply.
    if (auto q = std::find(queue_.begin(), queue_.end(), call); q != queue_.end()) {
      queued_bytes_ -= call->queued_bytes;
      queue_.erase(q);
      calls_.erase(it);
      if (running_ == 0 && queue_.empty()) idle_cv_.notify_all();
    }
    return;
  }
  spdlog::debug("ignored notification {}", msg.method);
}

McpServer::Answer McpServer::OnInitialize(const nlohmann::json& params, const protocol::RequestEnvelope*) {
  auto p = protocol::ParseInitializeParams(params);
  if (!p) return {nullptr, RpcError::InvalidParams(p.error().message)};
  protocol::InitializeResult r;
  r.protocol_version = protocol::NegotiateProtocolVersion(p->protocol_version);
  r.server_name = options_.name;
  r.server_version = options_.version;
  {
    std::lock_guard<std::mutex> lock(instructions_mu_);
    r.instructions = instructions_;
  }
  spdlog::debug("initialize: client asked {}, answering {}", p->protocol_version,
                r.protocol_version);
  if (p->client_info.is_object()) {
    const auto name = p->client_info.find("name");
    const auto version = p->client_info.find("version");
    if (name != p->client_info.end() && name->is_string()) {
      NoteClient(name->get<std::string>(),
                 version != p->client_info.end() && version->is_string() ? version->get<std::string>() : "", true);
    }
  }
  legacy_session_.store(true);
  return {protocol::ToJson(r), std::nullopt};
}

McpServer::Answer McpServer::OnPing(const nlohmann::json&, const protocol::RequestEnvelope*) {
  return {nlohmann::json::object(), std::nullopt};
}

McpServer::Answer McpServer::OnDiscover(const nlohmann::json&, const protocol::RequestEnvelope* modern) {
  // Without the envelope it is a legacy request, and the 2025 revisions have no such
  // method: -32601 as before (which a dual-era client reads as "legacy server").
  if (modern == nullptr) return {nullptr, RpcError::MethodNotFound("server/discover")};
  protocol::DiscoverResult r;
  for (std::string_view v : protocol::kModernProtocolVersions) r.supported_versions.emplace_back(v);
  {
    std::lock_guard<std::mutex> lock(instructions_mu_);
    r.instructions = instructions_;
  }
  r.cache = options_.discover_cache;
  return {protocol::ToJson(r), std::nullopt};
}

McpServer::Answer McpServer::OnListTools(const nlohmann::json& params, const protocol::RequestEnvelope* modern) {
  auto p = protocol::ParseListToolsParams(params);
  if (!p) return {nullptr, RpcError::InvalidParams(p.error().message)};
  const auto& all = tools_.tools();
  std::size_t offset = 0;
  if (p->cursor) {
    const auto decoded = protocol::DecodeCursor(*p->cursor);
    if (!decoded || *decoded > all.size()) return {nullptr, RpcError::InvalidParams("invalid cursor")};
    offset = *decoded;
  }
  protocol::ListToolsResult r;
  const std::size_t end = std::min(all.size(), offset + options_.tools_page_size);
  for (std::size_t i = offset; i < end; ++i) {
    const Tool& t = all[i];
    r.tools.push_back({t.name, t.title, t.description, t.input_schema, t.output_schema, t.annotations});
  }
  if (end < all.size()) r.next_cursor = protocol::EncodeCursor(end);
  // Registration order on every call and every page (a fixed order lets clients cache).
  if (modern != nullptr) return {protocol::WithCacheHint(protocol::ToJson(r), options_.tools_list_cache), std::nullopt};
  return {protocol::ToJson(r), std::nullopt};
}

McpServer::Answer McpServer::OnSetLevel(const nlohmann::json& params, const protocol::RequestEnvelope*) {
  auto level = protocol::ParseSetLevelParams(params);
  if (!level) return {nullptr, RpcError::InvalidParams(level.error().message)};
  log_level_.store(static_cast<int>(*level));
  return {nlohmann::json::object(), std::nullopt};
}

void McpServer::StartToolCall(const Message& msg, std::size_t bytes, const protocol::RequestEnvelope* modern) {
  const bool is_modern = modern != nullptr;
  auto p = protocol::ParseCallToolParams(msg.params);
  if (!p) {
    SendReply(msg.id, msg.id_text, {nullptr, RpcError::InvalidParams(p.error().message)});
    return;
  }
  const Tool* tool = tools_.Find(p->name);
  if (tool == nullptr) {
    SendReply(msg.id, msg.id_text, {nullptr, RpcError::InvalidParams("unknown tool: " + p->name)});
    return;
  }
  if (auto valid = ValidateJson(tool->input_schema, p->arguments); !valid) {
    // The model can correct itself: a result, not a protocol error (SPEC §5).
    protocol::CallToolResult r{"invalid arguments: " + valid.error().message, nullptr, true};
    SendReply(msg.id, msg.id_text, {protocol::ToJson(r), std::nullopt}, is_modern);
    return;
  }
  auto call = std::make_shared<Call>();
  call->id = msg.id;
  call->id_text = msg.id_text;
  call->id_key = protocol::IdKey(msg.id);
  call->tool = tool;
  call->arguments = std::move(p->arguments);
  call->progress_token = std::move(p->progress_token);
  call->modern = is_modern;
  if (is_modern) call->log_level = modern->log_level;
  enum class Start { kInline, kNow, kQueued, kBusy } start = Start::kInline;
  {
    std::lock_guard<std::mutex> lock(calls_mu_);
    if (calls_.count(call->id_key) != 0) {
      SendReply(msg.id, msg.id_text, {nullptr, RpcError::InvalidRequest("a request with this id is in flight")});
      return;
    }
    if (!tool->runs_inline) {
      if (running_ < options_.max_concurrent_calls) {
        ++running_;
        start = Start::kNow;
      } else if (queue_.size() < options_.max_queued_calls && queued_bytes_ + bytes <= options_.max_queued_bytes) {
        call->queued_bytes = bytes;
        queued_bytes_ += bytes;
        queue_.push_back(call);
        start = Start::kQueued;
      } else {
        start = Start::kBusy;
      }
    }
    if (start != Start::kBusy) {
      calls_.emplace(call->id_key, call);
      // Stop() may have run between the read and here: this call must see it too.
      if (stopping_.load()) call->cancel.Cancel();
    }
  }
  switch (start) {
    case Start::kInline:
      RunToolCall(call);
      return;
    case Start::kNow:
      loop_.Spawn([this, call] {
        RunToolCall(call);
        CallEnded();
      });
      return;
    case Start::kQueued:
      spdlog::debug("tools/call id={} queued: {} calls running (maxConcurrentCalls)", call->id_key,
                    options_.max_concurrent_calls);
      return;
    case Start::kBusy: {
      spdlog::warn("tools/call id={} refused: {} calls running and the queue is full", call->id_key,
                   options_.max_concurrent_calls);
      protocol::CallToolResult r{"server busy: " + std::to_string(options_.max_concurrent_calls) +
                                     " calls are running and the queue is full (" +
                                     std::to_string(options_.max_queued_calls) + " calls or " +
                                     std::to_string(options_.max_queued_bytes >> 20) +
                                     " MiB of requests); try again when some have answered",
                                 nullptr, true};
      SendReply(msg.id, msg.id_text, {protocol::ToJson(r), std::nullopt}, is_modern);
      return;
    }
  }
}

void McpServer::CallEnded() {
  // Runs on the ended call's fiber: the next queued call runs on it, in arrival order.
  for (;;) {
    std::shared_ptr<Call> next;
    {
      std::lock_guard<std::mutex> lock(calls_mu_);
      if (queue_.empty()) {
        if (--running_ == 0) idle_cv_.notify_all();
        return;
      }
      next = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= next->queued_bytes;
    }
    RunToolCall(next);
  }
}

void McpServer::RunToolCall(const std::shared_ptr<Call>& call) {
  Answer answer;
  // The other catch-all (STYLE.md §3): whatever the handler does, exactly one answer.
  try {
    ToolContext ctx{
        call->cancel,
        [this, call](double progress, std::optional<double> total, const std::string& message) {
          SendProgress(*call, progress, total, message);
        },
        [this, call](std::string_view level, const nlohmann::json& data) {
          SendLog(*call, level, data);
        },
        call->started,
    };
    ToolResult result = call->tool->handler(call->arguments, ctx);
    protocol::CallToolResult r{std::move(result.text), std::move(result.structured),
                               result.is_error};
    answer.result = protocol::ToJson(r);
  } catch (const std::exception& e) {
    spdlog::error("tool {} failed: {}", call->tool->name, e.what());
    answer = Answer{nullptr, RpcError::InternalError()};
  } catch (...) {
    spdlog::error("tool {} failed with an unknown exception", call->tool->name);
    answer = Answer{nullptr, RpcError::InternalError()};
  }
  FinishCall(call, answer);
}

void McpServer::FinishCall(const std::shared_ptr<Call>& call, const Answer& answer) {
  bool suppressed = false;
  {
    std::lock_guard<std::mutex> lock(calls_mu_);
    calls_.erase(call->id_key);
    suppressed = call->cancelled_by_client;
  }
  {
    // Taken so that no progress notification can follow the reply on the wire.
    std::lock_guard<std::mutex> lock(call->progress_mu);
    call->done.store(true);
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - call->started)
                      .count();
  if (suppressed) {
    spdlog::debug("tools/call id={} tool={} cancelled after {} ms; no reply", call->id_key,
                  call->tool->name, ms);
    return;
  }
  SendReply(call->id, call->id_text, answer, call->modern);
  spdlog::debug("tools/call id={} tool={} {} in {} ms", call->id_key, call->tool->name,
                answer.error ? "internal error" : "answered", ms);
}

// Progress policy: the value never decreases (clamped to the highest sent); an update
// within progress_interval of the last one sent is dropped unless its message is of
// another kind (MessageKind: digits ignored), so key switches and waits always get
// through while streaming counters are capped at ~10 per second. Nothing is sent
// without a progressToken, after the reply, or after a cancellation.
void McpServer::SendProgress(Call& call, double progress, std::optional<double> total,
                             const std::string& message) {
  if (call.progress_token.is_null() || call.cancel.cancelled()) return;
  std::lock_guard<std::mutex> lock(call.progress_mu);
  if (call.done.load()) return;
  const auto now = std::chrono::steady_clock::now();
  std::string kind = MessageKind(message);
  if (call.progress_sent) {
    progress = std::max(progress, call.progress_high);
    if (now - call.progress_last < options_.progress_interval && kind == call.progress_kind) {
      return;
    }
  }
  call.progress_sent = true;
  call.progress_high = progress;
  call.progress_last = now;
  call.progress_kind = std::move(kind);
  // Offered, not sent: a newer update replaces one the client has not taken yet, and
  // a client that stopped reading never stalls the upstream transfer calling this.
  // A switch or a wait announcement is never replaced by a mere character count.
  outbox_.Offer("progress " + call.id_key + " " + call.progress_kind,
                protocol::EncodeNotification("notifications/progress",
                                             protocol::ProgressParams(call.progress_token, progress, total, message)));
}

void McpServer::SendLog(Call& call, std::string_view level, const nlohmann::json& data) {
  if (call.done.load() || call.cancel.cancelled()) return;
  const protocol::LogLevel l = ToolLogLevel(level);
  if (call.modern) {
    // Request-scoped, and only when the request asked (logging.mdx, 2026-07-28).
    if (!call.log_level || l < *call.log_level) return;
  } else if (static_cast<int>(l) < log_level_.load()) {
    return;
  }
  Write(protocol::EncodeNotification("notifications/message", protocol::LogMessageParams(l, options_.name, data)));
}

void McpServer::Log(std::string_view level, const nlohmann::json& data) {
  if (!legacy_session_.load()) return;
  const protocol::LogLevel l = ToolLogLevel(level);
  if (static_cast<int>(l) < log_level_.load()) return;
  Write(protocol::EncodeNotification("notifications/message",
                                     protocol::LogMessageParams(l, options_.name, data)));
}

void McpServer::SetInstructions(std::string instructions) {
  std::lock_guard<std::mutex> lock(instructions_mu_);
  instructions_ = std::move(instructions);
}

void McpServer::NoteClient(const std::string& name, const std::string& version, bool always) {
  if (!options_.on_client) return;
  {
    std::lock_guard<std::mutex> lock(clients_mu_);
    // Bounded, so a client that changes its name on every request costs nothing.
    constexpr std::size_t kMaxClientsRemembered = 64;
    auto key = std::make_pair(name, version);
    const bool seen = clients_seen_.count(key) != 0;
    const bool full = clients_seen_.size() >= kMaxClientsRemembered;
    if (!always && (seen || full)) return;
    if (!full) clients_seen_.insert(std::move(key));
  }
  spdlog::debug("client identified itself: {} {}", name, version);
  options_.on_client(name, version);
}

void McpServer::SendReply(const nlohmann::json& id, const std::string& id_text, const Answer& answer, bool modern) {
  if (answer.error) {
    Write(protocol::EncodeError(id, *answer.error, id_text));
  } else if (modern) {
    Write(protocol::EncodeResult(id, protocol::ModernResult(answer.result, options_.name, options_.version), id_text));
  } else {
    Write(protocol::EncodeResult(id, answer.result, id_text));
  }
}

void McpServer::Write(std::string line) { outbox_.Send(std::move(line)); }

}  // namespace kpm::mcp
