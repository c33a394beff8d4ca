#pragma once
/// The line transport the MCP server speaks over: one JSON-RPC message per line.
/// StdioTransport is the only code that writes to stdout (STYLE.md §4).

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace kpm::server {

/// Abstract so that tests can drive the server in-process (pipes, fakes).
class Transport {
 public:
  enum class ReadStatus {
    kLine,     ///< `line` holds one message, without its line ending
    kTooLong,  ///< the line passed the size limit; the rest of it is discarded
    kClosed,   ///< end of input, a read error, or Interrupt() was called
  };

  virtual ~Transport() = default;

  /// Blocks until the next non-empty line. Called from one thread only.
  virtual ReadStatus ReadLine(std::string& line) = 0;

  /// Writes `line` plus '\n' as one unit and flushes. Thread-safe. Returns false when
  /// the output is gone (the peer closed it).
  virtual bool WriteLine(std::string_view line) = 0;

  /// Makes a blocked (and every later) ReadLine return kClosed. Thread-safe,
  /// async-signal-unsafe (call it from a normal thread).
  virtual void Interrupt() = 0;
};

struct StdioTransportOptions {
  int in_fd = 0;   ///< read from (not owned, never closed)
  int out_fd = 1;  ///< written to (not owned, never closed)
  std::size_t max_line_bytes = 16u << 20;  ///< longer lines are answered kTooLong
  /// Applied to every outgoing line before it is written (e.g. the key Scrubber as
  /// defense in depth). Must keep the line free of '\n'. Called from the writing
  /// threads concurrently, so it must be thread-safe. Empty = identity.
  std::function<std::string(std::string)> output_filter;
};

/// A Transport over two file descriptors (stdin/stdout by default, pipes in tests).
/// Reads use poll() on the input and an internal wake pipe so Interrupt() unblocks them.
class StdioTransport : public Transport {
 public:
  explicit StdioTransport(StdioTransportOptions options = {});
  /// Shorthand for main: StdioTransport transport(0, 1);
  StdioTransport(int in_fd, int out_fd, std::size_t max_line_bytes = 16u << 20);
  ~StdioTransport() override;
  StdioTransport(const StdioTransport&) = delete;
  StdioTransport& operator=(const StdioTransport&) = delete;

  ReadStatus ReadLine(std::string& line) override;
  bool WriteLine(std::string_view line) override;
  void Interrupt() override;

  /// Replaces StdioTransportOptions::output_filter. Call before any WriteLine (not
  /// synchronised with writers).
  void SetOutputFilter(std::function<std::string(std::string)> filter);

 private:
  /// Reads more input into buf_; false on EOF, error or interrupt.
  bool Fill();

  StdioTransportOptions options_;
  int wake_read_ = -1;
  int wake_write_ = -1;
  std::string buf_;          // bytes read but not yet returned
  std::size_t scanned_ = 0;  // prefix of buf_ known to hold no '\n'
  bool discarding_ = false;  // inside an over-long line: drop input up to its '\n'
  bool eof_ = false;
  std::atomic<bool> interrupted_{false};
  std::mutex write_mu_;
};

}  // namespace kpm::server
