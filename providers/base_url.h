#pragma once
/// Checking and showing endpoint URLs (`baseUrl`, per provider or per key) with
/// libcurl's own URL parser, so what the config accepts is exactly what curl sends.

#include <optional>
#include <string>
#include <string_view>

namespace kpm::providers {

/// Why `url` cannot be a baseUrl, or nullopt when it can: an http or https URL with a
/// host, no user:password@, no ?query, no #fragment, no spaces or control characters.
std::optional<std::string> BaseUrlError(std::string_view url);

/// The host (and port when one is given) of `url`, for display: "api.openai.com",
/// "127.0.0.1:8080". Empty when `url` does not parse.
std::string UrlHost(std::string_view url);

/// True when `url`'s host is a loopback address or name (127.0.0.0/8, ::1, localhost).
bool IsLoopbackUrl(std::string_view url);

}  // namespace kpm::providers
