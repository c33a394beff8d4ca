#pragma once
/// The line transport the MCP server speaks over: one JSON-RPC message per line.
/// StdioTransport is the only code that writes to stdout (STYLE.md §4).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "protocol/jsonrpc.h"

namespace kpm::mcp {

/// Abstract so that tests can drive the server in-process (pipes, fakes).
class Transport {
 public:
  enum class ReadStatus {
    kLine,     ///< `line` holds one message, without its line ending
    kTooLong,  ///< the line passed the size limit. Reported once it has ended (its
               ///< middle is dropped as it comes, never buffered); `line` holds its
               ///< first and its last protocol::kIdScanBytes (or fewer) joined by one
               ///< '\n', to find its id in (protocol::DecodeTooLong)
    kClosed,   ///< end of input, a read error, or Interrupt() was called
  };

  virtual ~Transport() = default;

  /// Blocks until the next non-empty line. Called from one thread only.
  virtual ReadStatus ReadLine(std::string& line) = 0;

  /// Writes `line` plus '\n' as one unit and flushes. Thread-safe. Returns false when
  /// the output is gone (the peer closed it), or after Interrupt() when the peer does
  /// not take the bytes in time (a client that stopped reading must not keep us alive).
  virtual bool WriteLine(std::string_view line) = 0;

  /// Makes a blocked (and every later) ReadLine return kClosed, and bounds how long a
  /// write may wait for the peer from then on. Thread-safe, async-signal-unsafe (call it
  /// from a normal thread).
  virtual void Interrupt() = 0;

  /// Lines longer than this are reported kTooLong (for the error message).
  virtual std::size_t max_line_bytes() const { return protocol::kMaxMessageBytes; }
};

struct StdioTransportOptions {
  int in_fd = 0;   ///< read from (not owned, never closed)
  int out_fd = 1;  ///< written to (not owned, never closed)
  std::size_t max_line_bytes = protocol::kMaxMessageBytes;  ///< longer lines are answered kTooLong
  /// Applied to every outgoing line before it is written (e.g. the key Scrubber as
  /// defense in depth). Must keep the line free of '\n'. Called from the writing
  /// threads concurrently, so it must be thread-safe. Empty = identity.
  std::function<std::string(std::string)> output_filter;
  /// After Interrupt(), a write gives up (returns false, and so does every later one)
  /// when the output accepts no byte for this long. Before Interrupt() writes wait as
  /// long as it takes: a slow client is still a client.
  std::chrono::milliseconds stop_write_timeout{1000};
};

/// A Transport over two file descriptors (stdin/stdout by default, pipes in tests).
/// Reads use poll() on the input and an internal wake pipe so Interrupt() unblocks them.
/// Writes too: they wait in poll() for the output and the wake pipe, never in write(),
/// so one SIGTERM stops a server whose client stopped reading its stdout.
class StdioTransport : public Transport {
 public:
  explicit StdioTransport(StdioTransportOptions options = {});
  /// Shorthand for main: StdioTransport transport(0, 1);
  StdioTransport(int in_fd, int out_fd, std::size_t max_line_bytes = protocol::kMaxMessageBytes);
  ~StdioTransport() override;
  StdioTransport(const StdioTransport&) = delete;
  StdioTransport& operator=(const StdioTransport&) = delete;

  ReadStatus ReadLine(std::string& line) override;
  bool WriteLine(std::string_view line) override;
  void Interrupt() override;
  std::size_t max_line_bytes() const override { return options_.max_line_bytes; }

  /// Replaces StdioTransportOptions::output_filter. Call before any WriteLine (not
  /// synchronised with writers).
  void SetOutputFilter(std::function<std::string(std::string)> filter);

 private:
  /// Reads more input into buf_; false on EOF, error or interrupt.
  bool Fill();
  /// Appends to too_long_tail_, keeping its last protocol::kIdScanBytes.
  void KeepTail(std::string_view bytes);
  /// Ends an over-long line: `line` = head '\n' tail.
  ReadStatus FinishTooLong(std::string& line);
  /// Waits until out_fd takes bytes: true when it does (or reports an error, which the
  /// write then sees); false once interrupted and it took nothing for stop_write_timeout.
  bool WaitWritable();

  StdioTransportOptions options_;
  int wake_read_ = -1;
  int wake_write_ = -1;
  std::string buf_;          // bytes read but not yet returned
  std::size_t scanned_ = 0;  // prefix of buf_ known to hold no '\n'
  bool discarding_ = false;  // inside an over-long line: drop input up to its '\n'
  std::string too_long_head_;  // of the over-long line being dropped
  std::string too_long_tail_;
  bool eof_ = false;
  std::atomic<bool> interrupted_{false};
  std::mutex write_mu_;
  bool output_abandoned_ = false;  // guarded by write_mu_: a write gave up after Interrupt()
};

}  // namespace kpm::mcp
