#pragma once
/// FakeHttpClient: scripted HTTP answers for the adapter tests (ninja's
/// FakeCommandRunner). Each Send() takes the next scripted answer and records the
/// request. 2xx bodies are fed to the body callback chunk by chunk, as the real
/// client does; other statuses (or no callback) come back in HttpResult::body, cut
/// at the request's cap with kTooLarge as the real client cuts them.

#include <algorithm>
#include <deque>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/strings.h"
#include "providers/http_client.h"
#include "tests/support/fake_clock.h"

namespace kpm::providers::testing {

struct FakeAnswer {
  int status = 200;
  Headers headers;
  std::vector<std::string> chunks;  ///< the body, in the pieces it arrives in
  TransportError error = TransportError::kNone;  ///< set: the transfer fails after the chunks
  std::string error_message;
  bool cut = false;  ///< the connection closes after the chunks, mid-body (error kNone, body_complete false)
};

/// A whole-body answer.
inline FakeAnswer Answer(int status, std::string body, Headers headers = {}) {
  FakeAnswer a;
  a.status = status;
  a.headers = std::move(headers);
  a.chunks.push_back(std::move(body));
  return a;
}

/// A transport failure with no status line.
inline FakeAnswer Failure(TransportError error, std::string message) {
  FakeAnswer a;
  a.status = 0;
  a.error = error;
  a.error_message = std::move(message);
  return a;
}

class FakeHttpClient : public HttpClient {
 public:
  void Script(FakeAnswer answer) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_.push_back(std::move(answer));
  }

  HttpResult Send(const HttpRequest& request, const BodyCallback& on_body) override {
    FakeAnswer a;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests.push_back(request);
      if (answers_.empty()) {
        HttpResult r;
        r.error = TransportError::kNetwork;
        r.error_message = "FakeHttpClient: nothing scripted";
        return r;
      }
      a = std::move(answers_.front());
      answers_.pop_front();
    }
    HttpResult r;
    r.status = a.status;
    r.headers = a.headers;
    if (a.status == 0) {
      r.error = a.error;
      r.error_message = a.error_message;
      return r;
    }
    const bool ok_status = a.status >= 200 && a.status <= 299;
    const bool stream = on_body && ok_status;
    const size_t cap = ok_status ? request.max_body_bytes : std::min(request.max_body_bytes, kMaxErrorBodyBytes);
    for (const std::string& chunk : a.chunks) {
      if (request.cancel != nullptr && request.cancel->cancelled()) {
        r.error = TransportError::kCancelled;
        return r;
      }
      if (!stream) {
        r.body += chunk;
        if (r.body.size() > cap) {
          r.body.resize(cap);
          r.error = TransportError::kTooLarge;
          r.error_message = "a body over " + CapText(cap);
          return r;
        }
      } else if (!on_body(chunk)) {
        r.error = TransportError::kAborted;
        return r;
      }
    }
    r.error = a.error;
    r.error_message = a.error_message;
    r.body_complete = a.error == TransportError::kNone && !a.cut;
    if (a.cut) r.error_message = "connection closed mid-body";
    return r;
  }

  /// The header `name` (case-insensitive) of request `i`, or "<absent>".
  std::string Header(size_t i, const std::string& name) const {
    for (const auto& [k, v] : requests.at(i).headers) {
      if (EqualsIgnoreCase(k, name)) return v;
    }
    return "<absent>";
  }

  std::vector<HttpRequest> requests;

 private:
  std::mutex mu_;
  std::deque<FakeAnswer> answers_;
};

/// The adapter tests use the keypool suite's clock (tests/support/fake_clock.h).
using kpm::testing::FakeClock;

}  // namespace kpm::providers::testing
