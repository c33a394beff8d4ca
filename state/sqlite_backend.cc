#include "state/sqlite_backend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include <sqlite3.h>

#include "state/shared_store.h"

namespace kpm::state {
namespace {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// One prepared statement, finalized when it goes.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK && s_ != nullptr; }
  sqlite3_stmt* get() const { return s_; }
  void Bind(int i, const std::string& v) { sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  int Step() { return sqlite3_step(s_); }
  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
  }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

class SqliteBackend : public StateBackend {
 public:
  explicit SqliteBackend(std::string path) : path_(std::move(path)) {}
  ~SqliteBackend() override { Close(); }

  std::string Describe() const override { return "sqlite " + path_; }

  Status Open() override {
    if (db_ != nullptr) return Ok{};
    if (Status s = CreateFile(); !s) return s;
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close(db);
      return MakeError(ErrorKind::kIo, msg);
    }
    db_ = db;
    sqlite3_busy_handler(db_, &SqliteBackend::WaitForLock, this);
    const char* setup =
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=NORMAL;"
        "CREATE TABLE IF NOT EXISTS entries(id TEXT PRIMARY KEY, value TEXT NOT NULL, updated_ms INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value TEXT NOT NULL);";
    if (Status s = Exec(setup); !s) {
      Close();
      return s;
    }
    // Retention: keys no longer in any config go after kEntryTtlMs without a write.
    Stmt del(db_, "DELETE FROM entries WHERE updated_ms < ?");
    if (del.ok()) {
      del.Bind(1, WallMs() - kEntryTtlMs);
      del.Step();
    }
    // The two statements of the hot path, prepared once per connection.
    if (sqlite3_prepare_v3(db_, "PRAGMA data_version", -1, SQLITE_PREPARE_PERSISTENT, &version_stmt_, nullptr) !=
            SQLITE_OK ||
        sqlite3_prepare_v3(db_, "SELECT value FROM entries WHERE id = ?", -1, SQLITE_PREPARE_PERSISTENT,
                           &read_stmt_, nullptr) != SQLITE_OK) {
      Error e = Fail();
      Close();
      return e;
    }
    ++generation_;
    return Ok{};
  }

  Result<uint64_t> Version() override {
    if (Status s = Open(); !s) return s.error();
    sqlite3_reset(version_stmt_);
    if (sqlite3_step(version_stmt_) != SQLITE_ROW) return Fail();
    // data_version is per connection: a new connection may start from the same
    // number, so the generation keeps versions distinct across reopenings.
    const uint64_t v = (generation_ << 40) + static_cast<uint64_t>(sqlite3_column_int64(version_stmt_, 0));
    sqlite3_reset(version_stmt_);
    return v;
  }

  Result<std::optional<std::string>> Read(const std::string& id) override {
    if (Status s = Open(); !s) return s.error();
    sqlite3_reset(read_stmt_);
    sqlite3_bind_text(read_stmt_, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
    int rc = sqlite3_step(read_stmt_);
    std::optional<std::string> out;
    if (rc == SQLITE_ROW) {
      const unsigned char* p = sqlite3_column_text(read_stmt_, 0);
      out = p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(read_stmt_, 0)))
              : std::string();
    }
    sqlite3_reset(read_stmt_);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Fail();
    return out;
  }

  Result<std::string> Update(const std::string& id,
                             const std::function<std::string(const std::optional<std::string>&)>& fn) override {
    if (Status s = Open(); !s) return s.error();
    // IMMEDIATE: the write lock first, so the read below is the newest state and no
    // other process writes between it and the commit.
    if (Status s = Exec("BEGIN IMMEDIATE"); !s) return s.error();
    std::optional<std::string> current;
    {
      Stmt q(db_, "SELECT value FROM entries WHERE id = ?");
      if (!q.ok()) return Rollback();
      q.Bind(1, id);
      int rc = q.Step();
      if (rc == SQLITE_ROW) {
        current = q.Text(0);
      } else if (rc != SQLITE_DONE) {
        return Rollback();
      }
    }
    std::string next = fn(current);
    {
      Stmt w(db_, "INSERT INTO entries(id, value, updated_ms) VALUES(?, ?, ?) "
                  "ON CONFLICT(id) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms");
      if (!w.ok()) return Rollback();
      w.Bind(1, id);
      w.Bind(2, next);
      w.Bind(3, WallMs());
      if (w.Step() != SQLITE_DONE) return Rollback();
    }
    if (Status s = Exec("COMMIT"); !s) {
      if (db_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return s.error();
    }
    return next;
  }

  Result<std::vector<Entry>> List() override {
    if (Status s = Open(); !s) return s.error();
    Stmt q(db_, "SELECT id, value FROM entries ORDER BY id");
    if (!q.ok()) return Fail();
    std::vector<Entry> out;
    int rc;
    while ((rc = q.Step()) == SQLITE_ROW) out.push_back(Entry{q.Text(0), q.Text(1)});
    if (rc != SQLITE_DONE) return Fail();
    return out;
  }

  Result<size_t> Remove(const std::vector<std::string>& ids) override {
    if (Status s = Open(); !s) return s.error();
    size_t n = 0;
    for (const std::string& id : ids) {
      Stmt d(db_, "DELETE FROM entries WHERE id = ?");
      if (!d.ok()) return Fail();
      d.Bind(1, id);
      if (d.Step() != SQLITE_DONE) return Fail();
      n += static_cast<size_t>(sqlite3_changes(db_));
    }
    return n;
  }

  Result<std::string> Secret() override {
    if (Status s = Open(); !s) return s.error();
    std::string secret;
    if (Status s = ReadSecret(secret); !s) return s.error();
    if (!secret.empty()) return known_secret_ = secret;
    // None yet (a new file, or one deleted since): create it, or put back the one this
    // process knew, so the ids of every process that knew it stay valid.
    if (Status s = Exec("BEGIN IMMEDIATE"); !s) return s.error();
    if (Status s = ReadSecret(secret); !s) return Rollback();
    if (secret.empty()) {
      secret = known_secret_.empty() ? RandomHex(32) : known_secret_;
      Stmt w(db_, "INSERT INTO meta(name, value) VALUES('key_id_secret', ?)");
      if (!w.ok()) return Rollback();
      w.Bind(1, secret);
      if (w.Step() != SQLITE_DONE) return Rollback();
    }
    if (Status s = Exec("COMMIT"); !s) {
      if (db_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return s.error();
    }
    return known_secret_ = secret;
  }

 private:
  /// The folder (0700) and an empty file (0600) before SQLite opens it, so the file
  /// is never readable by others, not even for a moment.
  Status CreateFile() {
    std::error_code ec;
    std::filesystem::path p(path_);
    if (p.has_parent_path()) {
      std::filesystem::path dir = p.parent_path();
      if (!std::filesystem::exists(dir, ec)) {
        std::filesystem::create_directories(dir, ec);
        if (ec) return MakeError(ErrorKind::kIo, "cannot create " + dir.string() + ": " + ec.message());
        ::chmod(dir.c_str(), 0700);
      }
    }
    int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return MakeError(ErrorKind::kIo, "cannot open " + path_ + ": " + std::strerror(errno));
    ::fchmod(fd, 0600);
    ::close(fd);
    return Ok{};
  }

  /// SQLite's own busy timeout sleeps ever longer (up to 100 ms a try), so a writer
  /// facing another process that writes in a tight loop can miss every short window
  /// between its transactions and give up. This one looks again every millisecond
  /// until kSqliteBusyTimeoutMs has passed since the first try.
  static int WaitForLock(void* self, int tries) {
    auto* b = static_cast<SqliteBackend*>(self);
    const auto now = std::chrono::steady_clock::now();
    if (tries == 0) b->busy_since_ = now;
    if (now - b->busy_since_ >= std::chrono::milliseconds(kSqliteBusyTimeoutMs)) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return 1;
  }

  Status Exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return Ok{};
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) Close();  // corrupt or gone: reopen next time
    return MakeError(ErrorKind::kIo, msg);
  }

  Error Fail() {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "not open";
    int rc = db_ ? sqlite3_errcode(db_) : SQLITE_ERROR;
    if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) Close();
    return MakeError(ErrorKind::kIo, msg);
  }
  Error Rollback() {
    Error e = Fail();
    if (db_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return e;
  }
  Status ReadSecret(std::string& out) {
    Stmt q(db_, "SELECT value FROM meta WHERE name = 'key_id_secret'");
    if (!q.ok()) return Fail();
    int rc = q.Step();
    if (rc == SQLITE_ROW) out = q.Text(0);
    else if (rc != SQLITE_DONE) return Fail();
    return Ok{};
  }

  void Close() {
    sqlite3_finalize(version_stmt_);
    sqlite3_finalize(read_stmt_);
    version_stmt_ = nullptr;
    read_stmt_ = nullptr;
    if (db_ != nullptr) sqlite3_close_v2(db_);
    db_ = nullptr;
  }

  std::string path_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* version_stmt_ = nullptr;
  sqlite3_stmt* read_stmt_ = nullptr;
  uint64_t generation_ = 0;
  std::chrono::steady_clock::time_point busy_since_;  // when the current wait for a lock began
  std::string known_secret_;  ///< the last secret read, put back if the file loses it
};

}  // namespace

std::unique_ptr<StateBackend> MakeSqliteBackend(std::string path) {
  return std::make_unique<SqliteBackend>(std::move(path));
}

}  // namespace kpm::state
