#pragma once
/// PipeClient: an in-process JSON-RPC client over two pipes, for driving the server's
/// real framing code (StdioTransport over the server-side fds) from a test, in the
/// spirit of clangd's LSPClient. A reader thread collects every line the server
/// writes; the Wait* calls block with a timeout so a hang fails fast.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace kpm::testing {

class PipeClient {
 public:
  using Json = nlohmann::json;
  static constexpr std::chrono::milliseconds kDefaultTimeout{10000};

  PipeClient();
  /// Closes every fd it still owns and joins the reader. Destroy the server first
  /// (it writes to server_out_fd()).
  ~PipeClient();
  PipeClient(const PipeClient&) = delete;
  PipeClient& operator=(const PipeClient&) = delete;

  /// The fd the server reads requests from.
  int server_in_fd() const { return to_server_[0]; }
  /// The fd the server writes replies to.
  int server_out_fd() const { return from_server_[1]; }

  /// Writes bytes as they are (no newline added). Returns false if the pipe is closed.
  bool SendRaw(std::string_view bytes);
  /// Writes `line` plus '\n'.
  bool SendLine(std::string_view line) { return SendRaw(std::string(line) + "\n"); }
  /// Writes one JSON message as a line.
  bool Send(const Json& message) { return SendLine(message.dump()); }
  /// Sends {"jsonrpc":"2.0","id":id,"method":method,"params":params?}.
  bool Request(const Json& id, std::string_view method, const Json& params = nullptr);
  /// Sends {"jsonrpc":"2.0","method":method,"params":params?}.
  bool Notify(std::string_view method, const Json& params = nullptr);
  /// Closes the server's input: it sees EOF.
  void CloseInput();

  /// The first reply (result or error) with this id, waiting up to `timeout`.
  std::optional<Json> WaitForReply(const Json& id, std::chrono::milliseconds timeout = kDefaultTimeout);
  /// The first message received matching `pred`, waiting up to `timeout`.
  std::optional<Json> WaitFor(const std::function<bool(const Json&)>& pred,
                              std::chrono::milliseconds timeout = kDefaultTimeout);

  /// Everything received so far, in order; a line that is not JSON is kept as a string.
  std::vector<Json> Messages() const;
  std::vector<std::string> Lines() const;
  /// How many replies carry this id.
  std::size_t ReplyCount(const Json& id) const;
  /// Messages whose "method" is `method` (notifications from the server).
  std::vector<Json> Notifications(std::string_view method) const;

 private:
  void ReadLoop();
  static bool IsReplyTo(const Json& message, const Json& id);

  int to_server_[2] = {-1, -1};
  int from_server_[2] = {-1, -1};
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  std::vector<Json> messages_;
};

}  // namespace kpm::testing
