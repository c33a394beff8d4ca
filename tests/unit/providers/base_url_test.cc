#include "providers/base_url.h"

#include <catch2/catch.hpp>

#include <string>

namespace kpm::providers {
namespace {

std::string Why(std::string_view url) { return BaseUrlError(url).value_or("(accepted)"); }

TEST_CASE("A baseUrl with an http or https scheme and a host is accepted", "[unit][providers][base_url]") {
  for (const char* url : {"https://api.openai.com/v1", "http://localhost:11434/v1", "http://127.0.0.1:8080",
                          "https://[::1]:9000/v1/", "https://eu.api.example.com/openai/v1", "https://h/a@b"}) {
    INFO(url);
    CHECK(Why(url) == "(accepted)");
  }
}

TEST_CASE("A baseUrl without http or https is refused with the scheme named", "[unit][providers][base_url]") {
  for (const char* url : {"ftp://h/v1", "foo://h/v1", "api.openai.com/v1", "file:///etc/passwd", "//h/v1"}) {
    INFO(url);
    CHECK(Why(url) == "must start with http:// or https://");
  }
}

TEST_CASE("A baseUrl without a host is refused", "[unit][providers][base_url]") {
  for (const char* url : {"https://", "https:///v1", "http://:8080/v1"}) {
    INFO(url);
    CHECK(Why(url).find("host") != std::string::npos);
  }
}

TEST_CASE("A baseUrl with credentials a query a fragment or a space is refused", "[unit][providers][base_url]") {
  CHECK(Why("https://user:pass@h/v1").find("user:password@") != std::string::npos);
  CHECK(Why("https://user@h/v1").find("user:password@") != std::string::npos);
  CHECK(Why("https://h/v1?key=1").find("?query") != std::string::npos);
  CHECK(Why("https://h/v1#top").find("#fragment") != std::string::npos);
  CHECK(Why("https://h/v 1").find("space") != std::string::npos);
  CHECK(Why("https://h/v1\n").find("control") != std::string::npos);
  CHECK(Why("") == "is empty");
  CHECK(Why("https://h:99999/v1") != "(accepted)");
}

TEST_CASE("No baseUrl error message quotes the URL", "[unit][providers][base_url]") {
  const std::string secret = "s3cr3tPassw0rd";
  for (std::string url : {"https://u:" + secret + "@h/v1", "https://h/v1?" + secret, "foo://" + secret}) {
    INFO(url);
    CHECK(Why(url).find(secret) == std::string::npos);
  }
}

TEST_CASE("UrlHost and IsLoopbackUrl read the host libcurl sees", "[unit][providers][base_url]") {
  CHECK(UrlHost("https://api.openai.com/v1") == "api.openai.com");
  CHECK(UrlHost("http://127.0.0.1:8080/v1") == "127.0.0.1:8080");
  CHECK(UrlHost("not a url") == "");
  CHECK(IsLoopbackUrl("http://localhost:1/v1"));
  CHECK(IsLoopbackUrl("http://127.1.2.3/v1"));
  CHECK(IsLoopbackUrl("http://[::1]:8/v1"));
  CHECK_FALSE(IsLoopbackUrl("http://127.example.com/v1"));
  CHECK_FALSE(IsLoopbackUrl("http://10.0.0.1/v1"));
}

}  // namespace
}  // namespace kpm::providers
