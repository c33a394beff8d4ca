// CurlHttpClient: the only file that includes libcurl.
//
// Connection reuse: one CURLSH per client shares the connection cache, DNS cache and
// TLS session cache between all transfers, guarded by one std::mutex per curl lock
// kind (curl calls our lock/unlock callbacks). Each Send() runs its own easy handle
// inside its own multi handle on the calling thread, so worker threads never share a
// handle, yet a connection left idle by one transfer is picked up by the next one to
// the same host, whichever thread runs it. HTTP/1.1 is forced: keep-alive per host is
// what we need, and HTTP/2 multiplexing across multi handles is a corner of libcurl
// we do not want to depend on.
//
// Timeouts and cancellation: we drive the multi handle ourselves and poll at most
// kPollMs, checking the CancelToken and our three clocks (first byte, idle, total)
// on every turn and in the xferinfo callback, so an abort lands within ~kPollMs and
// we know which limit fired (curl's own CURLOPT_TIMEOUT_MS is only a backstop).
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

#include "common/strings.h"
#include "providers/caps.h"
#include "providers/http_client.h"

namespace kpm::providers {
namespace {

constexpr int kPollMs = 20;

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

class CurlHttpClient : public HttpClient {
 public:
  CurlHttpClient() {
    GlobalInit();
    share_ = curl_share_init();
    curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &CurlHttpClient::Lock);
    curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &CurlHttpClient::Unlock);
    curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }
  ~CurlHttpClient() override { curl_share_cleanup(share_); }
  CurlHttpClient(const CurlHttpClient&) = delete;
  CurlHttpClient& operator=(const CurlHttpClient&) = delete;

  HttpResult Send(const HttpRequest& request, const BodyCallback& on_body) override;

 private:
  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* userptr) {
    static_cast<CurlHttpClient*>(userptr)->locks_[LockIndex(data)].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* userptr) {
    static_cast<CurlHttpClient*>(userptr)->locks_[LockIndex(data)].unlock();
  }
  static size_t LockIndex(curl_lock_data data) {
    auto i = static_cast<size_t>(data);
    return i < kLocks ? i : 0;
  }

  static constexpr size_t kLocks = CURL_LOCK_DATA_LAST;
  CURLSH* share_ = nullptr;
  std::array<std::mutex, kLocks> locks_;
};

HttpResult CurlHttpClient::Send(const HttpRequest& request, const BodyCallback& on_body) {
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

  CURL* easy = curl_easy_init();
  CURLM* multi = curl_multi_init();
  if (easy == nullptr || multi == nullptr) {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (multi != nullptr) curl_multi_cleanup(multi);
    result.error = TransportError::kNetwork;
    result.error_message = "could not create a curl handle";
    return result;
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers) {
    headers = curl_slist_append(headers, (name + ": " + value).c_str());
  }
  // No "Expect: 100-continue" round trip before a large body.
  headers = curl_slist_append(headers, "Expect:");

  long total_ms = static_cast<long>(std::max<int64_t>(1, request.total_timeout_ms));
  long connect_ms = static_cast<long>(std::max<int64_t>(
      1, std::min({request.connect_timeout_ms, request.first_byte_timeout_ms, request.total_timeout_ms})));
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

  curl_multi_add_handle(multi, easy);
  CURLcode code = CURLE_OK;
  bool finished = false;
  while (!finished) {
    int running = 0;
    CURLMcode mc = curl_multi_perform(multi, &running);
    if (mc != CURLM_OK) {
      code = CURLE_FAILED_INIT;
      snprintf(errbuf, sizeof(errbuf), "%s", curl_multi_strerror(mc));
      break;
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg == CURLMSG_DONE) {
        code = msg->data.result;
        finished = true;
      }
    }
    if (finished) break;
    if (t.abort_reason == TransportError::kNone) t.abort_reason = t.CheckLimits(SteadyClock::now());
    if (t.abort_reason != TransportError::kNone) {
      code = CURLE_ABORTED_BY_CALLBACK;
      break;
    }
    curl_multi_poll(multi, nullptr, 0, kPollMs, nullptr);
  }
  curl_multi_remove_handle(multi, easy);

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
  curl_multi_cleanup(multi);
  curl_easy_cleanup(easy);
  curl_slist_free_all(headers);
  return result;
}

}  // namespace

std::unique_ptr<HttpClient> MakeCurlHttpClient() { return std::make_unique<CurlHttpClient>(); }

}  // namespace kpm::providers
