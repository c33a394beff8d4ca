#include "state/redis_backend.h"

#include <hiredis/hiredis.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <set>
#include <utility>

#include "common/strings.h"

namespace kpm::state {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr size_t kScanCount = 500;  // SCAN COUNT and MGET/DEL batch size
constexpr int kBackoffFirstMs = 100;
constexpr int kBackoffMaxMs = 1000;
constexpr int kSubscriberPingMs = 1000;  // idle time before the subscriber checks the line
constexpr size_t kSecretBytes = 32;

/// SCAN MATCH is a glob: the prefix must match itself only.
std::string EscapeGlob(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string HostPort(const RedisOptions& o) {
  bool ipv6 = o.host.find(':') != std::string::npos;
  return (ipv6 ? "[" + o.host + "]" : o.host) + ":" + std::to_string(o.port);
}

timeval Millis(int ms) { return timeval{ms / 1000, static_cast<suseconds_t>((ms % 1000) * 1000)}; }

std::string_view ReplyText(const redisReply& r) { return std::string_view(r.str, r.len); }
bool IsString(const redisReply* r) { return r != nullptr && r->type == REDIS_REPLY_STRING; }
bool IsOk(const redisReply* r) { return r != nullptr && r->type == REDIS_REPLY_STATUS && ReplyText(*r) == "OK"; }

/// hiredis' text for a broken connection, with a read timeout said plainly.
std::string ContextError(const redisContext* c, int command_timeout_ms) {
  if (c == nullptr) return "out of memory";
  std::string_view text = c->errstr;
  if (c->err == REDIS_ERR_IO && text == std::strerror(EAGAIN)) {
    return "no answer within " + std::to_string(command_timeout_ms) + " ms";
  }
  return std::string(text);
}

/// hiredis writes with write(2): a server that went away would raise SIGPIPE and kill a
/// process that did not ignore it. This blocks it in the calling thread for the scope
/// and swallows one raised meanwhile (the write then fails with EPIPE instead).
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    blocked_ = pthread_sigmask(SIG_BLOCK, &pipe_, &old_) == 0;
  }
  ~SigpipeBlock() {
    if (!blocked_) return;
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_{}, old_{};
  bool was_pending_ = false;
  bool blocked_ = false;
};

RedisReplyPtr Run(redisContext* c, const std::vector<std::string_view>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (auto a : args) argv.push_back(a.data()), lens.push_back(a.size());
  return RedisReplyPtr(
      static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
}

/// Connects, sets the command timeout, AUTHs and (when `select`) SELECTs. On failure
/// returns null and sets `error` (never containing the password).
redisContext* Connect(const RedisOptions& o, bool select, std::string* error) {
  redisContext* c = redisConnectWithTimeout(o.host.c_str(), o.port, Millis(o.connect_timeout_ms));
  if (c == nullptr || c->err) {
    *error = ContextError(c, o.command_timeout_ms);
    if (c != nullptr) redisFree(c);
    return nullptr;
  }
  auto fail = [&](std::string what) {
    *error = std::move(what);
    redisFree(c);
    return nullptr;
  };
  if (redisSetTimeout(c, Millis(o.command_timeout_ms)) != REDIS_OK) return fail(ContextError(c, o.command_timeout_ms));
  if (!o.password.empty()) {
    std::vector<std::string_view> auth{"AUTH"};
    if (!o.username.empty()) auth.push_back(o.username);
    auth.push_back(o.password);
    RedisReplyPtr r = Run(c, auth);
    if (!r) return fail(ContextError(c, o.command_timeout_ms));
    // Redis' answer (WRONGPASS…, ERR AUTH <password> called without any password…) names
    // no secret, but a server could echo; say only that AUTH was refused.
    if (!IsOk(r.get())) return fail("AUTH refused (check the user and password in the redis URL)");
  }
  if (select) {
    std::string db = std::to_string(o.db);
    RedisReplyPtr r = Run(c, {"SELECT", db});
    if (!r) return fail(ContextError(c, o.command_timeout_ms));
    if (!IsOk(r.get())) {
      return fail("SELECT " + db + ": " + (r->type == REDIS_REPLY_ERROR ? std::string(ReplyText(*r)) : "bad reply"));
    }
  }
  return c;
}

}  // namespace

void RedisReplyDeleter::operator()(redisReply* reply) const { freeReplyObject(reply); }

RedisBackend::RedisBackend(RedisOptions options)
    : options_(std::move(options)),
      where_("redis " + HostPort(options_) + "/" + std::to_string(options_.db)),
      jitter_(static_cast<std::minstd_rand::result_type>(SteadyClock::now().time_since_epoch().count() ^
                                                         reinterpret_cast<uintptr_t>(this))) {}

RedisBackend::~RedisBackend() {
  StopSubscriber();
  CloseCommand();
}

std::string RedisBackend::Describe() const { return where_ + " prefix " + options_.prefix; }

std::string RedisBackend::KeyName(std::string_view id) const { return options_.prefix + ":key:" + std::string(id); }

Status RedisBackend::Open() {
  bool reconnected = false;
  if (command_ == nullptr) {
    std::string error;
    SigpipeBlock guard;
    command_ = Connect(options_, /*select=*/true, &error);
    if (command_ == nullptr) return MakeError(ErrorKind::kIo, where_ + ": " + error);
    // A new connection may have missed changes (or found a restarted, empty server).
    version_.fetch_add(1);
    reconnected = true;
  }
  if (!subscriber_.joinable()) {
    StartSubscriber();
    std::unique_lock lock(first_mu_);
    int bound_ms = options_.connect_timeout_ms + 2 * options_.command_timeout_ms + 250;
    first_cv_.wait_for(lock, std::chrono::milliseconds(bound_ms), [&] { return first_attempt_done_; });
  } else if (reconnected && !subscribed_.load()) {
    kick_.store(true);  // the server answers again: resubscribe now, not after the backoff
    Wake();
  }
  return Ok{};
}

Result<uint64_t> RedisBackend::Version() {
  if (!subscriber_.joinable()) return MakeError(ErrorKind::kIo, where_ + ": not open");
  if (!subscribed_.load()) return MakeError(ErrorKind::kIo, where_ + ": change subscription is down, reconnecting");
  return version_.load();
}

void RedisBackend::CloseCommand() {
  if (command_ != nullptr) redisFree(command_);
  command_ = nullptr;
}

Error RedisBackend::IoError() {
  std::string message = where_ + ": " + ContextError(command_, options_.command_timeout_ms);
  CloseCommand();
  return MakeError(ErrorKind::kIo, std::move(message));
}

Error RedisBackend::ReplyError(std::string_view command, const redisReply& reply) const {
  std::string detail = reply.type == REDIS_REPLY_ERROR ? std::string(ReplyText(reply)) : "unexpected reply";
  return MakeError(ErrorKind::kIo, where_ + ": " + std::string(command) + ": " + detail);
}

Result<std::vector<RedisReplyPtr>> RedisBackend::Pipeline(const std::vector<std::vector<std::string_view>>& commands) {
  if (auto opened = Open(); !opened) return opened.error();
  SigpipeBlock guard;
  for (const auto& args : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto a : args) argv.push_back(a.data()), lens.push_back(a.size());
    if (redisAppendCommandArgv(command_, static_cast<int>(argv.size()), argv.data(), lens.data()) != REDIS_OK) {
      return IoError();
    }
  }
  std::vector<RedisReplyPtr> replies;
  for (size_t i = 0; i < commands.size(); ++i) {
    void* reply = nullptr;
    if (redisGetReply(command_, &reply) != REDIS_OK) return IoError();
    replies.emplace_back(static_cast<redisReply*>(reply));
  }
  return replies;
}

Result<RedisReplyPtr> RedisBackend::Command(const std::vector<std::string_view>& args) {
  auto replies = Pipeline({args});
  if (!replies) return replies.error();
  RedisReplyPtr reply = std::move(replies->front());
  if (reply->type == REDIS_REPLY_ERROR) return ReplyError(args.front(), *reply);
  return reply;
}

Result<std::optional<std::string>> RedisBackend::Read(const std::string& id) {
  auto reply = Command({"GET", KeyName(id)});
  if (!reply) return reply.error();
  if ((*reply)->type == REDIS_REPLY_NIL) return std::optional<std::string>();
  if (!IsString(reply->get())) return ReplyError("GET", **reply);
  return std::optional<std::string>(std::string(ReplyText(**reply)));
}

Result<std::string> RedisBackend::Update(const std::string& id,
                                         const std::function<std::string(const std::optional<std::string>&)>& fn) {
  const std::string key = KeyName(id);
  const std::string ttl = std::to_string(kEntryTtlMs);
  const std::string channel = options_.prefix + ":changes";
  const std::string secret_key = options_.prefix + ":secret";
  for (int attempt = 0; attempt < kMaxUpdateAttempts; ++attempt) {
    auto read = Pipeline({{"WATCH", key}, {"GET", key}});
    if (!read) return read.error();
    const redisReply* got = (*read)[1].get();
    if ((*read)[0]->type == REDIS_REPLY_ERROR || !(got->type == REDIS_REPLY_NIL || IsString(got))) {
      bool watch_failed = (*read)[0]->type == REDIS_REPLY_ERROR;
      Error e = ReplyError(watch_failed ? "WATCH" : "GET", *(watch_failed ? (*read)[0] : (*read)[1]));
      CloseCommand();  // drops the WATCH with the connection: the next call starts clean
      return e;
    }
    std::optional<std::string> current;
    if (IsString(got)) current = std::string(ReplyText(*got));
    std::string value = fn(current);

    std::vector<std::vector<std::string_view>> tx{{"MULTI"}, {"SET", key, value, "PX", ttl}};
    if (secret_hex_) {
      // Keeps the secret alive as long as anyone writes, and puts it back if the server
      // lost it (restart without persistence) before a newcomer creates another.
      tx.push_back({"SET", secret_key, *secret_hex_, "NX", "PX", ttl});
      tx.push_back({"PEXPIRE", secret_key, ttl});
    }
    tx.push_back({"PUBLISH", channel, id});  // inside MULTI: announced if and only if written
    tx.push_back({"EXEC"});
    auto replies = Pipeline(tx);
    if (!replies) return replies.error();
    const redisReply* exec = replies->back().get();
    if (exec->type == REDIS_REPLY_NIL) {
      // Someone wrote `key` after our WATCH. A random pause before trying again: two
      // writers in lockstep would otherwise lose to each other in the same phase
      // every time (seen: 50 losses in a row with two racers on loopback).
      int max_ms = std::min(attempt + 1, 10);
      std::this_thread::sleep_for(std::chrono::microseconds(jitter_() % (max_ms * 1000 + 1)));
      continue;
    }
    bool ok = exec->type == REDIS_REPLY_ARRAY && exec->elements == tx.size() - 2 && IsOk(exec->element[0]);
    if (!ok) {
      // The first error says most: a command refused while queueing, else one inside EXEC.
      const redisReply* culprit = exec;
      for (const auto& r : *replies) {
        if (r->type == REDIS_REPLY_ERROR && culprit == exec) culprit = r.get();
      }
      for (size_t i = 0; culprit == exec && exec->type == REDIS_REPLY_ARRAY && i < exec->elements; ++i) {
        if (exec->element[i]->type == REDIS_REPLY_ERROR) culprit = exec->element[i];
      }
      Error e = ReplyError("SET", *culprit);
      CloseCommand();
      return e;
    }
    return value;
  }
  return MakeError(ErrorKind::kIo, where_ + ": update of one entry lost " + std::to_string(kMaxUpdateAttempts) +
                                       " races in a row to other writers");
}

Result<std::vector<Entry>> RedisBackend::List() {
  const std::string pattern = EscapeGlob(options_.prefix) + ":key:*";
  const std::string count = std::to_string(kScanCount);
  std::set<std::string> keys;  // SCAN may return a key twice
  std::string cursor = "0";
  do {
    auto reply = Command({"SCAN", cursor, "MATCH", pattern, "COUNT", count});
    if (!reply) return reply.error();
    const redisReply* r = reply->get();
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !IsString(r->element[0]) ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
      return ReplyError("SCAN", *r);
    }
    cursor = std::string(ReplyText(*r->element[0]));
    for (size_t i = 0; i < r->element[1]->elements; ++i) {
      const redisReply* k = r->element[1]->element[i];
      if (IsString(k)) keys.emplace(ReplyText(*k));
    }
  } while (cursor != "0");

  const size_t skip = options_.prefix.size() + 5;  // ":key:"
  std::vector<std::string> all(keys.begin(), keys.end());
  std::vector<Entry> entries;
  for (size_t start = 0; start < all.size(); start += kScanCount) {
    size_t end = std::min(all.size(), start + kScanCount);
    std::vector<std::string_view> args{"MGET"};
    for (size_t i = start; i < end; ++i) args.push_back(all[i]);
    auto reply = Command(args);
    if (!reply) return reply.error();
    const redisReply* r = reply->get();
    if (r->type != REDIS_REPLY_ARRAY || r->elements != end - start) return ReplyError("MGET", *r);
    for (size_t i = start; i < end; ++i) {
      const redisReply* v = r->element[i - start];
      if (!IsString(v)) continue;  // expired or removed since the SCAN (or not a string)
      entries.push_back(Entry{all[i].substr(skip), std::string(ReplyText(*v))});
    }
  }
  return entries;
}

Result<size_t> RedisBackend::Remove(const std::vector<std::string>& ids) {
  size_t removed = 0;
  std::vector<std::string> names;
  for (const auto& id : ids) names.push_back(KeyName(id));
  for (size_t start = 0; start < names.size(); start += kScanCount) {
    size_t end = std::min(names.size(), start + kScanCount);
    std::vector<std::string_view> args{"DEL"};
    for (size_t i = start; i < end; ++i) args.push_back(names[i]);
    auto reply = Command(args);
    if (!reply) return reply.error();
    if ((*reply)->type != REDIS_REPLY_INTEGER || (*reply)->integer < 0) return ReplyError("DEL", **reply);
    removed += static_cast<size_t>((*reply)->integer);
  }
  if (removed > 0) {
    std::string message;
    for (const auto& id : ids) message += (message.empty() ? "" : " ") + id;
    auto published = Command({"PUBLISH", options_.prefix + ":changes", message});
    if (!published) return published.error();
  }
  return removed;
}

Result<std::string> RedisBackend::Secret() {
  // Read every time (the caller asks only when something changed): a server that
  // restarted empty gets the secret this process knows back (SET NX), and when another
  // process put a different one there first, the stored one is what this returns.
  std::string hex;
  if (secret_hex_) {
    hex = *secret_hex_;
  } else {
    std::string fresh(kSecretBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(fresh.data()), static_cast<int>(fresh.size())) != 1) {
      return MakeError(ErrorKind::kInternal, "RAND_bytes failed");
    }
    hex = HexEncode(fresh);
  }
  const std::string name = options_.prefix + ":secret";
  const std::string ttl = std::to_string(kEntryTtlMs);
  auto replies = Pipeline({{"SET", name, hex, "NX", "PX", ttl}, {"GET", name}, {"PEXPIRE", name, ttl}});
  if (!replies) return replies.error();
  const redisReply* set = (*replies)[0].get();
  const redisReply* got = (*replies)[1].get();
  if (!IsOk(set) && set->type != REDIS_REPLY_NIL) return ReplyError("SET", *set);
  if (!IsString(got)) return ReplyError("GET", *got);
  std::string_view stored = ReplyText(*got);
  auto decoded = HexDecode(stored);
  if (!decoded || decoded->size() != kSecretBytes) {
    return MakeError(ErrorKind::kIo, where_ + ": " + name + " is not 64 hex characters; delete it to start over");
  }
  secret_hex_ = std::string(stored);
  secret_ = std::move(*decoded);
  return *secret_;
}

// --- the subscriber ---------------------------------------------------------

void RedisBackend::StartSubscriber() {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  subscriber_ = std::thread([this] { SubscriberLoop(); });
}

void RedisBackend::StopSubscriber() {
  if (!subscriber_.joinable()) return;
  stop_.store(true);
  Wake();
  subscriber_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
  wake_fd_ = -1;
}

void RedisBackend::Wake() {
  if (wake_fd_ < 0) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void RedisBackend::SubscriberWait(int ms) {
  pollfd p{wake_fd_, POLLIN, 0};
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(ms);
  while (!stop_.load() && !kick_.load()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
    if (left <= 0) return;
    if (::poll(&p, 1, static_cast<int>(left)) > 0) {
      uint64_t drained;
      [[maybe_unused]] ssize_t n = ::read(wake_fd_, &drained, sizeof drained);
    }
  }
}

void RedisBackend::FirstAttemptDone() {
  std::lock_guard lock(first_mu_);
  if (first_attempt_done_) return;
  first_attempt_done_ = true;
  first_cv_.notify_all();
}

void RedisBackend::SubscriberLoop() {
  // This thread's writes must never raise SIGPIPE; it is ours, so block it for good.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);

  int backoff_ms = kBackoffFirstMs;
  bool outage_logged = false;
  while (!stop_.load()) {
    std::string reason;
    bool was_subscribed = SubscriberSession(&reason);
    FirstAttemptDone();  // a failed first attempt: Open() waits no longer
    if (stop_.load()) break;
    if (was_subscribed) {
      backoff_ms = kBackoffFirstMs;
      outage_logged = false;
    }
    if (!outage_logged) {
      spdlog::warn("{}: change subscription {}: {}; reconnecting in the background", where_,
                   was_subscribed ? "lost" : "failed", reason);
      outage_logged = true;
    }
    SubscriberWait(backoff_ms);  // returns at once when kicked
    if (kick_.exchange(false)) {
      backoff_ms = kBackoffFirstMs;
    } else {
      backoff_ms = std::min(backoff_ms * 2, kBackoffMaxMs);
    }
  }
}

bool RedisBackend::SubscriberSession(std::string* reason) {
  redisContext* c = Connect(options_, /*select=*/false, reason);  // channels ignore the db
  if (c == nullptr) return false;
  struct Closer {
    redisContext* c;
    ~Closer() { redisFree(c); }
  } closer{c};
  auto context_error = [&] { return ContextError(c, options_.command_timeout_ms); };

  RedisReplyPtr subscribed = Run(c, {"SUBSCRIBE", options_.prefix + ":changes"});
  if (!subscribed) {
    *reason = context_error();
    return false;
  }
  if (subscribed->type != REDIS_REPLY_ARRAY || subscribed->elements < 1 || !IsString(subscribed->element[0]) ||
      ReplyText(*subscribed->element[0]) != "subscribe") {
    *reason = subscribed->type == REDIS_REPLY_ERROR ? "SUBSCRIBE: " + std::string(ReplyText(*subscribed))
                                                    : "SUBSCRIBE: unexpected reply";
    return false;
  }
  // Bump before saying so: every Version() from now on differs from any value returned
  // before this (re)connection, so callers reload what they may have missed.
  version_.fetch_add(1);
  subscribed_.store(true);
  FirstAttemptDone();
  *reason = ReadChanges(c);
  subscribed_.store(false);
  return true;
}

std::string RedisBackend::ReadChanges(redisContext* c) {
  auto last_traffic = SteadyClock::now();
  bool ping_sent = false;
  while (!stop_.load()) {
    // Messages hiredis has buffered already (one read can bring several).
    for (;;) {
      void* raw = nullptr;
      if (redisGetReplyFromReader(c, &raw) != REDIS_OK) return ContextError(c, options_.command_timeout_ms);
      if (raw == nullptr) break;
      RedisReplyPtr r(static_cast<redisReply*>(raw));
      if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && IsString(r->element[0]) &&
          ReplyText(*r->element[0]) == "message") {
        version_.fetch_add(1);
      }
    }
    // The read timeout is this poll (not SO_RCVTIMEO: a timed-out hiredis context is
    // dead); the eventfd ends it at once on shutdown.
    pollfd fds[2] = {{c->fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int ready = ::poll(fds, 2, kSubscriberPingMs);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return std::string("poll: ") + std::strerror(errno);
    }
    if (ready == 0) {
      // A quiet line: a PING tells a live server from one that vanished without a FIN.
      if (ping_sent && SteadyClock::now() - last_traffic > std::chrono::milliseconds(2 * kSubscriberPingMs)) {
        return "no answer to PING";
      }
      if (!ping_sent) {
        const char* argv[] = {"PING"};
        size_t lens[] = {4};
        if (redisAppendCommandArgv(c, 1, argv, lens) != REDIS_OK) return "PING: out of memory";
        for (int done = 0; !done;) {
          if (redisBufferWrite(c, &done) != REDIS_OK) return ContextError(c, options_.command_timeout_ms);
        }
        ping_sent = true;
      }
      continue;
    }
    if (fds[1].revents & POLLIN) {
      uint64_t drained;
      [[maybe_unused]] ssize_t n = ::read(wake_fd_, &drained, sizeof drained);
      kick_.store(false);  // subscribed already: nothing to hurry
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (redisBufferRead(c) != REDIS_OK) return ContextError(c, options_.command_timeout_ms);
      last_traffic = SteadyClock::now();
      ping_sent = false;
    }
  }
  return "stopping";
}

std::unique_ptr<StateBackend> MakeRedisBackend(const RedisOptions& options) {
  return std::make_unique<RedisBackend>(options);
}

}  // namespace kpm::state
