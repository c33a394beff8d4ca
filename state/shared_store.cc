#include "state/shared_store.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "common/strings.h"
#include "keypool/key_pool.h"

namespace kpm::state {
namespace {

using keypool::KeyRecord;

/// How often a store that failed is tried again.
constexpr int64_t kRetryMs = 1000;
/// How often counters are written when no transition carries them.
constexpr int64_t kFlushMs = 1000;

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string HmacSha256Hex(const std::string& secret, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(mac), len));
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    // OpenSSL's generator failing is next to impossible; the pid and time still make
    // owners distinct, and a secret made this way is only weaker, never shared.
    std::snprintf(raw.data(), bytes, "%d-%lld", static_cast<int>(getpid()), static_cast<long long>(SteadyMs()));
  }
  return HexEncode(raw);
}

SharedKeyStateStore::SharedKeyStateStore(std::unique_ptr<StateBackend> backend)
    : backend_(std::move(backend)), owner_(std::to_string(getpid()) + "-" + RandomHex(8)) {}

SharedKeyStateStore::~SharedKeyStateStore() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!Reachable()) return;
  for (auto& [handle, c] : cache_) {
    if (c.pending_requests > 0 || c.pending_failures > 0 || c.dirty) WriteThrough(c, [](KeyRecord&) {});
  }
}

std::string SharedKeyStateStore::StoredId(const keypool::KeyIdentity& key) const {
  // A keyless entry (local server) or a key disabled by configuration is known by its
  // place; a key by its bytes, so every process and every config naming it agree.
  std::string material = key.provider + '\0' + key.base_url + '\0' +
                         (key.secret.empty() ? "(no key)#" + std::to_string(key.index) : key.secret);
  return key.provider + ":" + HmacSha256Hex(secret_, material);
}

std::string SharedKeyStateStore::Bind(const keypool::KeyIdentity& key) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string handle = key.provider + "/" + std::to_string(key.index) + "/" + key.label;
  Cached& c = cache_[handle];
  c = Cached{};  // a handle bound again (another key under that label) starts clean
  c.identity = key;
  c.meta.provider = key.provider;
  c.meta.host = key.host;
  if (!secret_.empty()) c.stored_id = StoredId(key);
  return handle;
}

bool SharedKeyStateStore::degraded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return degraded_;
}

void SharedKeyStateStore::Degrade(const std::string& why) const {
  if (!degraded_) {
    spdlog::warn("state store {} is not usable ({}); keeping key state in this process's memory until it is back",
                 backend_->Describe(), why);
  }
  degraded_ = true;
  retry_at_ms_ = SteadyMs() + kRetryMs;
}

bool SharedKeyStateStore::Reachable() const {
  if (degraded_ && SteadyMs() < retry_at_ms_) return false;
  if (Status s = backend_->Open(); !s) {
    Degrade(s.error().message);
    return false;
  }
  Result<uint64_t> v = backend_->Version();
  if (!v) {
    Degrade(v.error().message);
    return false;
  }
  if (degraded_) {
    // A connection from before the outage may look open and fail on first use: prove
    // the store answers (one read, a reconnect allowed) before saying it is back.
    bool answered = false;
    for (int attempt = 0; attempt < 2 && !answered; ++attempt) {
      (void)backend_->Open();
      answered = backend_->Read("probe").has_value();
    }
    if (!answered) {
      retry_at_ms_ = SteadyMs() + kRetryMs;
      return false;
    }
    v = backend_->Version();
    if (!v) return false;
  }
  // The secret is read again after an outage: a store that was reset meanwhile (an
  // empty Redis, a deleted file) may have been given a new one by another process.
  // (Refresh also checks it when a record it read before has vanished.)
  if (secret_.empty() || degraded_) {
    Result<std::string> secret = backend_->Secret();
    if (!secret) {
      Degrade(secret.error().message);
      return false;
    }
    if (*secret != secret_) Rekey(*secret);
  }
  version_ = *v;
  if (degraded_) {
    degraded_ = false;
    spdlog::warn("state store {} is back: key state is shared again", backend_->Describe());
  }
  for (auto& [handle, c] : cache_) {
    if (c.dirty && !WriteThrough(c, [](KeyRecord&) {})) return false;
  }
  return true;
}

void SharedKeyStateStore::Rekey(const std::string& secret) const {
  const bool first = secret_.empty();
  secret_ = secret;
  if (!first) {
    spdlog::warn("state store {} was reset (its key id secret changed); writing what this process knows again",
                 backend_->Describe());
  }
  for (auto& [handle, c] : cache_) {
    c.stored_id = StoredId(c.identity);
    // What this process knew under the old ids is merged into the new ones.
    if (!first && c.loaded) c.dirty = true;
    c.loaded = false;
    c.existed = false;
  }
}

void SharedKeyStateStore::Refresh(Cached& c) const {
  if (c.loaded && c.seen_version == version_) return;
  Result<std::optional<std::string>> text = backend_->Read(c.stored_id);
  if (!text) {
    Degrade(text.error().message);
    return;
  }
  if (!text->has_value() && c.existed && !secret_.empty()) {
    // A record this process read before is gone: the store may have been reset (an
    // empty Redis after a restart, a deleted file) and given a new id secret.
    Result<std::string> secret = backend_->Secret();
    if (secret && *secret != secret_) {
      Rekey(*secret);
      Refresh(c);
      return;
    }
  }
  KeyRecord fresh;
  if (text->has_value()) {
    c.existed = true;
    Result<StoredRecord> decoded = DecodeRecord(**text);
    if (decoded) {
      fresh = std::move(decoded->record);
    } else if (!warned_corrupt_) {
      warned_corrupt_ = true;
      spdlog::warn("state store {}: a key's record is unreadable; it starts over", backend_->Describe());
    }
  }
  if (c.dirty) fresh = MergeRecovered(fresh, c.record);
  KeepNewerUse(fresh, c.record);
  fresh.requests += c.pending_requests;
  fresh.failures += c.pending_failures;
  fresh.in_flight = c.record.in_flight;
  c.record = std::move(fresh);
  c.loaded = true;
  c.seen_version = version_;
}

bool SharedKeyStateStore::WriteThrough(Cached& c, const std::function<void(KeyRecord&)>& fn) const {
  KeyRecord result;
  const int64_t now = WallMs();
  Result<std::string> stored = backend_->Update(c.stored_id, [&](const std::optional<std::string>& current) {
    KeyRecord fresh;
    if (current) {
      if (Result<StoredRecord> decoded = DecodeRecord(*current)) fresh = std::move(decoded->record);
    }
    if (c.dirty) fresh = MergeRecovered(fresh, c.record);
    fresh.in_flight = c.record.in_flight;
    fresh.requests += c.pending_requests;
    fresh.failures += c.pending_failures;
    KeepNewerUse(fresh, c.record);
    fn(fresh);
    result = fresh;
    EntryMeta meta = c.meta;
    meta.updated_ms = now;
    return EncodeRecord(fresh, meta);
  });
  if (!stored) {
    Degrade(stored.error().message);
    return false;
  }
  c.record = std::move(result);
  c.loaded = true;
  c.existed = true;
  c.dirty = false;
  c.pending_requests = 0;
  c.pending_failures = 0;
  c.flushed_at_ms = SteadyMs();
  // Our own write does not make our copy stale (a backend may count it as a change).
  if (Result<uint64_t> v = backend_->Version()) version_ = *v;
  c.seen_version = version_;
  return true;
}

KeyRecord SharedKeyStateStore::Load(const std::string& key_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  Cached& c = cache_[key_id];
  if (Reachable()) Refresh(c);
  return c.record;
}

KeyRecord SharedKeyStateStore::Update(const std::string& key_id, const std::function<void(KeyRecord&)>& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  Cached& c = cache_[key_id];
  const bool reachable = Reachable();
  if (reachable) Refresh(c);
  KeyRecord next = c.record;
  fn(next);
  if (SameState(next, c.record)) {
    // Counters only: no write now.
    c.pending_requests += next.requests - c.record.requests;
    c.pending_failures += next.failures - c.record.failures;
    c.record = std::move(next);
    if (reachable && !degraded_ && (c.pending_requests > 0 || c.pending_failures > 0) &&
        SteadyMs() - c.flushed_at_ms >= kFlushMs) {
      WriteThrough(c, [](KeyRecord&) {});
    }
    return c.record;
  }
  if (!reachable || degraded_ || !WriteThrough(c, fn)) {
    c.pending_requests += next.requests - c.record.requests;
    c.pending_failures += next.failures - c.record.failures;
    c.record = std::move(next);
    c.dirty = true;
  }
  return c.record;
}

Result<std::string> SharedKeyStateStore::IdOf(const keypool::KeyIdentity& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Status s = backend_->Open(); !s) return s.error();
  if (secret_.empty()) {
    Result<std::string> secret = backend_->Secret();
    if (!secret) return secret.error();
    secret_ = *secret;
  }
  return StoredId(key);
}

Result<std::vector<ListedKey>> SharedKeyStateStore::List() {
  std::lock_guard<std::mutex> lock(mu_);
  if (Status s = backend_->Open(); !s) return s.error();
  Result<std::vector<Entry>> entries = backend_->List();
  if (!entries) return entries.error();
  std::vector<ListedKey> out;
  for (Entry& e : *entries) {
    Result<StoredRecord> decoded = DecodeRecord(e.value);
    if (!decoded) continue;  // unreadable: status says nothing it cannot read
    out.push_back(ListedKey{std::move(e.id), std::move(*decoded)});
  }
  return out;
}

Status SharedKeyStateStore::Reset(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Status s = backend_->Open(); !s) return s;
  const int64_t now = WallMs();
  Result<std::string> r = backend_->Update(id, [&](const std::optional<std::string>& current) {
    StoredRecord rec;
    if (current) {
      if (Result<StoredRecord> decoded = DecodeRecord(*current)) rec = std::move(*decoded);
    }
    keypool::ResetRecord(rec.record, now);
    rec.meta.updated_ms = now;
    return EncodeRecord(rec.record, rec.meta);
  });
  if (!r) return r.error();
  // Our own write does not move our Version(): read that key again next time.
  for (auto& [handle, c] : cache_) {
    if (c.stored_id == id) c.loaded = false;
  }
  return Ok{};
}

Result<size_t> SharedKeyStateStore::Prune(const std::vector<std::string>& keep) {
  Result<std::vector<ListedKey>> all = List();
  if (!all) return all.error();
  std::vector<std::string> gone;
  for (const ListedKey& k : *all) {
    if (std::find(keep.begin(), keep.end(), k.id) == keep.end()) gone.push_back(k.id);
  }
  std::lock_guard<std::mutex> lock(mu_);
  return backend_->Remove(gone);
}

}  // namespace kpm::state
