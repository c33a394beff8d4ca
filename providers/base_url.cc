// The second file that includes libcurl: its URL API (curl_url), used to check
// baseUrl values at load time. Transfers stay in curl_http_client.cc.
#include "providers/base_url.h"

#include <curl/curl.h>

#include <memory>

namespace kpm::providers {
namespace {

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

/// One part of a parsed URL, or nullopt when the URL lacks it.
std::optional<std::string> Part(CURLU* u, CURLUPart what) {
  char* out = nullptr;
  if (curl_url_get(u, what, &out, 0) != CURLUE_OK || out == nullptr) return std::nullopt;
  std::string s(out);
  curl_free(out);
  return s;
}

UrlHandle Parse(std::string_view url) {
  UrlHandle u(curl_url());
  if (!u) return nullptr;
  std::string text(url);
  if (curl_url_set(u.get(), CURLUPART_URL, text.c_str(), 0) != CURLUE_OK) return nullptr;
  return u;
}

}  // namespace

std::optional<std::string> BaseUrlError(std::string_view url) {
  if (url.empty()) return "is empty";
  for (char c : url) {
    auto b = static_cast<unsigned char>(c);
    if (b <= 0x20 || b == 0x7F) return "contains a space or a control character";
  }
  // The scheme first, as written (lower case): libcurl would refuse a scheme it was not
  // built with as "unsupported" (CURLU_NON_SUPPORT_SCHEME is off) and guess one for
  // "api.openai.com/v1" only with CURLU_GUESS_SCHEME, which is off too.
  if (url.substr(0, 7) != "http://" && url.substr(0, 8) != "https://") return "must start with http:// or https://";
  const std::string_view after_scheme = url.substr(url.find("://") + 3);
  if (after_scheme.empty() || after_scheme[0] == '/' || after_scheme[0] == ':') return "has no host";
  UrlHandle u = Parse(url);
  if (!u) return "is not a URL libcurl can parse (expected e.g. https://api.example.com/v1)";
  std::optional<std::string> scheme = Part(u.get(), CURLUPART_SCHEME);
  if (!scheme || (*scheme != "http" && *scheme != "https")) return "must start with http:// or https://";
  std::optional<std::string> host = Part(u.get(), CURLUPART_HOST);
  if (!host || host->empty()) return "has no host";
  if (Part(u.get(), CURLUPART_USER) || Part(u.get(), CURLUPART_PASSWORD)) {
    return "must not carry user:password@ (put credentials in apiKey or headers)";
  }
  if (url.find('?') != std::string_view::npos) return "must not have a ?query (the path is appended to it)";
  if (url.find('#') != std::string_view::npos) return "must not have a #fragment";
  return std::nullopt;
}

std::string UrlHost(std::string_view url) {
  UrlHandle u = Parse(url);
  if (!u) return "";
  std::string host = Part(u.get(), CURLUPART_HOST).value_or("");
  if (std::optional<std::string> port = Part(u.get(), CURLUPART_PORT)) host += ":" + *port;
  return host;
}

bool IsLoopbackUrl(std::string_view url) {
  UrlHandle u = Parse(url);
  if (!u) return false;
  std::string host = Part(u.get(), CURLUPART_HOST).value_or("");
  if (host == "localhost" || host == "[::1]" || host == "::1") return true;
  // 127.0.0.0/8 as an IPv4 literal only: "127.example.com" is a name like any other.
  int parts = 0;
  if (host.rfind("127.", 0) != 0) return false;
  for (size_t i = 0, start = 0; i <= host.size(); ++i) {
    if (i < host.size() && host[i] != '.') {
      if (host[i] < '0' || host[i] > '9' || i - start >= 3) return false;
      continue;
    }
    if (i == start) return false;
    ++parts;
    start = i + 1;
  }
  return parts == 4;
}

}  // namespace kpm::providers
