// CurlHttpClient: the only file that includes libcurl.
//
// One upstream I/O loop: every transfer is an easy handle in ONE multi handle, driven
// on the thread of a fiber::Loop (this client is that loop's Poller). The multi handle
// owns the connection cache, so keep-alive reuse is libcurl's supported model by
// construction: one thread, one cache. A Send() on a fiber of the loop adds its handle
// and parks; the loop sleeps in curl_multi_poll, runs curl_multi_perform and resumes the
// fiber whose transfer ended. A Send() from any other thread runs on a fiber of the loop
// and waits. Curl's callbacks (and so the caller's body callback) run on the loop thread.
// HTTP/1.1 is forced: keep-alive per host is what we need.
//
// Timeouts and cancellation: the loop wakes at least every kPollMs while a transfer is
// in flight and checks each one's CancelToken and our three clocks (first byte, idle,
// total), so an abort lands within ~kPollMs and we know which limit fired (curl's own
// CURLOPT_TIMEOUT_MS is only a backstop).
//
// Caps (caps.h): the header block and a collected body are bounded; past a cap the
// callback makes curl stop the transfer (kTooLarge), so an upstream that never stops
// sending costs at most the cap. A streamed body is bounded by its callback.
// No exception may cross libcurl's C frames: our callbacks catch everything and abort.

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "common/fiber.h"

#include "common/strings.h"
#include "providers/caps.h"
#include "providers/http_client.h"

namespace kpm::providers {
namespace {

constexpr int64_t kPollMs = 20;       // limits and cancellation are looked at this often
constexpr int64_t kIdleWakeMs = 1000;  // the loop's longest sleep with nothing to do
constexpr long kReceiveBufferBytes = 8 * 1024;

using SteadyClock = std::chrono::steady_clock;

int64_t MsSince(SteadyClock::time_point t, SteadyClock::time_point now) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - t).count();
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

/// The state of one transfer, shared with curl's callbacks through their userdata.
struct Transfer {
  const HttpRequest* request = nullptr;
  const BodyCallback* on_body = nullptr;
  HttpResult* result = nullptr;
  SteadyClock::time_point start;
  SteadyClock::time_point last_byte;  // last header or body byte
  bool headers_done = false;          // the final response's header block has ended
  bool streaming = false;             // body goes to on_body (2xx and a callback given)
  size_t header_bytes = 0;            // every header line so far, 1xx blocks included
  TransportError abort_reason = TransportError::kNone;
  std::string abort_what;             // for kTooLarge and a callback that threw
  fiber::Loop::FiberId fiber = nullptr;  // parked until the transfer ends
  bool finished = false;
  CURLcode code = CURLE_OK;
  char errbuf[CURL_ERROR_SIZE] = {0};

  /// The most body bytes collected into result->body for this response.
  size_t BodyCap() const {
    size_t cap = request->max_body_bytes;
    if (result->status < 200 || result->status > 299) cap = std::min(cap, kMaxErrorBodyBytes);
    return cap;
  }

  /// Which limit, if any, the transfer has passed by `now`.
  TransportError CheckLimits(SteadyClock::time_point now) const {
    if (request->cancel != nullptr && request->cancel->cancelled()) return TransportError::kCancelled;
    if (MsSince(start, now) >= request->total_timeout_ms) return TransportError::kTotalTimeout;
    if (!headers_done) {
      if (MsSince(start, now) >= request->first_byte_timeout_ms) return TransportError::kFirstByteTimeout;
    } else if (MsSince(last_byte, now) >= request->idle_timeout_ms) {
      return TransportError::kIdleTimeout;
    }
    return TransportError::kNone;
  }
};

/// One header line (with its line end). False stops the transfer.
bool OnHeaderLine(Transfer* t, std::string_view line) {
  t->last_byte = SteadyClock::now();
  t->header_bytes += line.size();
  if (t->header_bytes > kMaxHeaderBytes) {
    t->abort_reason = TransportError::kTooLarge;
    t->abort_what = "response headers over " + CapText(kMaxHeaderBytes);
    return false;
  }
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.substr(0, 5) == "HTTP/") {  // a new status line: 1xx, then the final one
    t->result->headers.clear();
    t->headers_done = false;
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos) {
      int status = 0;  // three digits at most: a longer run is no status, and cannot overflow
      for (size_t i = sp + 1; i < line.size() && i <= sp + 3 && std::isdigit(static_cast<unsigned char>(line[i]));
           ++i) {
        status = status * 10 + (line[i] - '0');
      }
      t->result->status = status;
    }
    return true;
  }
  if (line.empty()) {  // end of a header block; 1xx blocks are followed by another
    if (t->result->status >= 200) {
      t->headers_done = true;
      t->streaming = t->on_body != nullptr && *t->on_body && t->result->status < 300;
    }
    return true;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return true;
  std::string name = AsciiLower(line.substr(0, colon));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  t->result->headers[name] = std::string(value);
  return true;
}

/// One piece of the body: to the callback when streaming, else collected up to the cap.
/// False stops the transfer.
bool OnBody(Transfer* t, std::string_view data) {
  t->last_byte = SteadyClock::now();
  if (t->streaming) {
    if ((*t->on_body)(data)) return true;
    t->abort_reason = TransportError::kAborted;
    return false;
  }
  std::string& body = t->result->body;
  const size_t cap = t->BodyCap();
  if (body.empty()) {
    // A declared length: refuse one over the cap at once, else allocate it once (growing
    // by doubling leaves the outgrown buffers resident, about the body's size again).
    if (auto it = t->result->headers.find("content-length"); it != t->result->headers.end()) {
      uint64_t declared = 0;
      auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), declared);
      if (ec == std::errc() && end == it->second.data() + it->second.size()) {
        if (declared > cap) {
          t->abort_reason = TransportError::kTooLarge;
          t->abort_what = "a body over " + CapText(cap);
          return false;
        }
        body.reserve(static_cast<size_t>(declared));
      }
    }
  }
  const size_t room = cap - std::min(cap, body.size());
  if (data.size() > room) {
    body.append(data.substr(0, room));
    t->abort_reason = TransportError::kTooLarge;
    t->abort_what = "a body over " + CapText(cap);
    return false;
  }
  if (body.size() + data.size() > body.capacity()) {
    // Grow towards the cap, never past it: a body near the cap costs the cap, not twice it.
    body.reserve(std::min(cap, std::max(body.size() + data.size(), 2 * body.capacity())));
  }
  body.append(data);
  return true;
}

/// Our callbacks run inside libcurl's C frames, which no exception may cross.
void AbortOnException(Transfer* t) {
  t->abort_reason = TransportError::kAborted;
  t->abort_what = "the response could not be processed (out of memory?)";
}

size_t HeaderCallback(char* data, size_t size, size_t nitems, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  const size_t n = size * nitems;
  try {
    return OnHeaderLine(t, std::string_view(data, n)) ? n : 0;  // anything but n stops curl
  } catch (...) {
    AbortOnException(t);
    return 0;
  }
}

size_t WriteCallback(char* data, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  const size_t n = size * nmemb;
  try {
    return OnBody(t, std::string_view(data, n)) ? n : CURL_WRITEFUNC_ERROR;
  } catch (...) {
    AbortOnException(t);
    return CURL_WRITEFUNC_ERROR;
  }
}

int XferInfoCallback(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(userdata);
  TransportError e = t->CheckLimits(SteadyClock::now());
  if (e == TransportError::kNone) return 0;
  t->abort_reason = e;
  return 1;  // abort: curl returns CURLE_ABORTED_BY_CALLBACK
}

class CurlHttpClient : public HttpClient, public fiber::Poller {
 public:
  explicit CurlHttpClient(fiber::Loop& loop) : loop_(loop) {
    GlobalInit();
    multi_ = curl_multi_init();
    // TLS sessions are resumed across handles; the connection and DNS caches are the
    // multi handle's own. One thread uses all of it: no lock callbacks.
    share_ = curl_share_init();
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    loop_.SetPoller(this);
  }
  ~CurlHttpClient() override {
    loop_.Stop();  // every transfer has ended with its fiber
    loop_.SetPoller(nullptr);
    for (CURL* easy : idle_) curl_easy_cleanup(easy);
    curl_multi_cleanup(multi_);
    curl_share_cleanup(share_);
  }
  CurlHttpClient(const CurlHttpClient&) = delete;
  CurlHttpClient& operator=(const CurlHttpClient&) = delete;

  HttpResult Send(const HttpRequest& request, const BodyCallback& on_body) override;

  // fiber::Poller: the loop sleeps in curl_multi_poll and runs the transfers' I/O.
  void Poll(int64_t timeout_ms) override;
  void Wake() override { curl_multi_wakeup(multi_); }

 private:
  /// Runs what is ready; a transfer that ended resumes its fiber.
  void Perform();
  /// Ends transfers past a limit (cancel, first byte, idle, total).
  void CheckLimits();
  void End(Transfer* t, CURLcode code);
  CURL* TakeEasy();
  void GiveBack(CURL* easy);

  static constexpr size_t kIdleHandlesKept = 64;
  fiber::Loop& loop_;
  CURLM* multi_ = nullptr;
  CURLSH* share_ = nullptr;
  std::vector<Transfer*> active_;  // added to multi_, in the order they started
  std::vector<CURL*> idle_;        // reset handles for the next transfers
  bool ended_ = false;             // a transfer ended in this Poll
};

void CurlHttpClient::Poll(int64_t timeout_ms) {
  ended_ = false;
  Perform();
  // A transfer that just ended has a fiber to run: do not sleep before running it.
  if (timeout_ms != 0 && !ended_) {
    int64_t wait = timeout_ms < 0 ? kIdleWakeMs : timeout_ms;
    long curl_wait = -1;
    curl_multi_timeout(multi_, &curl_wait);
    if (curl_wait >= 0) wait = std::min<int64_t>(wait, curl_wait);
    if (!active_.empty()) wait = std::min<int64_t>(wait, kPollMs);
    curl_multi_poll(multi_, nullptr, 0, static_cast<int>(wait), nullptr);
    Perform();
  }
  CheckLimits();
}

void CurlHttpClient::Perform() {
  int running = 0;
  CURLMcode mc = curl_multi_perform(multi_, &running);
  if (mc != CURLM_OK) {
    for (Transfer* t : active_) {
      snprintf(t->errbuf, sizeof(t->errbuf), "%s", curl_multi_strerror(mc));
      End(t, CURLE_FAILED_INIT);
    }
    return;
  }
  int queued = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &queued)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Transfer* t = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
    if (t != nullptr) End(t, msg->data.result);
  }
}

void CurlHttpClient::CheckLimits() {
  const auto now = SteadyClock::now();
  for (Transfer* t : active_) {
    if (t->finished) continue;
    if (t->abort_reason == TransportError::kNone) t->abort_reason = t->CheckLimits(now);
    if (t->abort_reason != TransportError::kNone) End(t, CURLE_ABORTED_BY_CALLBACK);
  }
}

void CurlHttpClient::End(Transfer* t, CURLcode code) {
  if (t->finished) return;
  t->finished = true;
  t->code = code;
  ended_ = true;
  loop_.Resume(t->fiber);
}

CURL* CurlHttpClient::TakeEasy() {
  if (idle_.empty()) return curl_easy_init();
  CURL* easy = idle_.back();
  idle_.pop_back();
  return easy;
}

void CurlHttpClient::GiveBack(CURL* easy) {
  if (idle_.size() >= kIdleHandlesKept) {
    curl_easy_cleanup(easy);
    return;
  }
  curl_easy_reset(easy);
  idle_.push_back(easy);
}

HttpResult CurlHttpClient::Send(const HttpRequest& request, const BodyCallback& on_body) {
  if (fiber::Loop::Current() != &loop_) {
    // Not on a fiber of the I/O loop (the CLI, a test thread): run there and wait.
    HttpResult result;
    loop_.Run([&] { result = Send(request, on_body); });
    return result;
  }
  HttpResult result;
  Transfer t;
  t.request = &request;
  t.on_body = &on_body;
  t.result = &result;
  t.start = t.last_byte = SteadyClock::now();
  if (request.cancel != nullptr && request.cancel->cancelled()) {
    result.error = TransportError::kCancelled;
    result.error_message = "cancelled";
    return result;
  }

  CURL* easy = TakeEasy();
  if (easy == nullptr || multi_ == nullptr) {
    if (easy != nullptr) curl_easy_cleanup(easy);
    result.error = TransportError::kNetwork;
    result.error_message = "could not create a curl handle";
    return result;
  }
  char* errbuf = t.errbuf;
  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers) {
    headers = curl_slist_append(headers, (name + ": " + value).c_str());
  }
  // No "Expect: 100-continue" round trip before a large body.
  headers = curl_slist_append(headers, "Expect:");

  long total_ms = static_cast<long>(std::max<int64_t>(1, request.total_timeout_ms));
  long connect_ms = static_cast<long>(std::max<int64_t>(
      1, std::min({request.connect_timeout_ms, request.first_byte_timeout_ms, request.total_timeout_ms})));
  curl_easy_setopt(easy, CURLOPT_PRIVATE, &t);
  curl_easy_setopt(easy, CURLOPT_SHARE, share_);
  curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  // Backstop only: our own checks fire first and say which limit it was.
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, total_ms + 1000);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  // Each transfer in flight holds one receive buffer: 8 KiB instead of curl's 16 KiB keeps
  // 512 calls in flight 4 MiB smaller; SSE events and error bodies are far smaller.
  curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, kReceiveBufferBytes);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &HeaderCallback);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &WriteCallback);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &XferInfoCallback);
  curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &t);
  if (request.method == "GET") {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  } else {
    if (request.method != "POST") curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.c_str());
  }

  // The transfer runs in the loop's multi handle; this fiber parks until it ends.
  t.fiber = loop_.Self();
  curl_multi_add_handle(multi_, easy);
  active_.push_back(&t);
  while (!t.finished) loop_.Park();
  active_.erase(std::find(active_.begin(), active_.end(), &t));
  curl_multi_remove_handle(multi_, easy);
  const CURLcode code = t.code;

  if (t.abort_reason != TransportError::kNone && code != CURLE_OK) {
    result.error = t.abort_reason;
    switch (t.abort_reason) {
      case TransportError::kCancelled: result.error_message = "cancelled"; break;
      case TransportError::kFirstByteTimeout:
        result.error_message = "no response headers within " + std::to_string(request.first_byte_timeout_ms) + " ms";
        break;
      case TransportError::kIdleTimeout:
        result.error_message = "stream silent for " + std::to_string(request.idle_timeout_ms) + " ms";
        break;
      case TransportError::kTotalTimeout:
        result.error_message = "request took longer than " + std::to_string(request.total_timeout_ms) + " ms";
        break;
      case TransportError::kAborted:
        result.error_message = t.abort_what.empty() ? "aborted by the body callback" : t.abort_what;
        break;
      case TransportError::kTooLarge:
        result.error_message = t.abort_what;
        if (!t.headers_done) {  // no usable answer: the header block itself was too big
          result.status = 0;
          result.headers.clear();
        }
        break;
      default: break;
    }
  } else if (code == CURLE_OK) {
    result.body_complete = true;
  } else {
    std::string message = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code);
    result.error_message = message;
    if (code == CURLE_OPERATION_TIMEDOUT && t.headers_done) {
      result.error = TransportError::kTotalTimeout;
    } else if (code == CURLE_OPERATION_TIMEDOUT && result.status == 0 &&
               MsSince(t.start, SteadyClock::now()) >= request.first_byte_timeout_ms) {
      result.error = TransportError::kFirstByteTimeout;
    } else if (!t.headers_done) {
      // Refused, reset, DNS, TLS, connect timeout, empty reply: nothing usable came back.
      result.error = TransportError::kNetwork;
      result.status = 0;
      result.headers.clear();
    } else {
      // Headers arrived, then the body was cut: the caller sees status plus
      // body_complete == false and decides (a cut 2xx is a server_error).
      result.error = TransportError::kNone;
    }
  }
  GiveBack(easy);
  curl_slist_free_all(headers);
  return result;
}

}  // namespace

std::unique_ptr<HttpClient> MakeCurlHttpClient(fiber::Loop& loop) { return std::make_unique<CurlHttpClient>(loop); }

}  // namespace kpm::providers
