#pragma once
/// Names for config messages: lists of the known field and value names, and the
/// did-you-mean guess for an unknown one ("log_level" -> "logLevel").

#include <span>
#include <string>
#include <string_view>

namespace kpm::server {

/// A list of known names (a field set, the valid words of an enum).
using Names = std::span<const std::string_view>;

bool HasName(Names names, std::string_view s);

/// "a, b, c".
std::string JoinNames(Names names);

/// The known name the user most likely meant, or empty. Names compare without case,
/// '-' or '_'. A typo (at most two edits: "openai-compatibel") wins; then one name
/// containing the other ("timeout" / "timeoutMs", "key" / "apiKey"); then a small edit
/// distance (at most a third of the name).
std::string ClosestName(std::string_view unknown, Names known);

/// ` — did you mean "<ClosestName>"?`, or empty when nothing is close.
std::string DidYouMean(std::string_view unknown, Names known);

/// True when `unknown` is within two edits of one of `known` (compared as ClosestName
/// does). No key is that close to a field name or a type word, so such a value may be
/// quoted in a message.
bool IsTypoOf(std::string_view unknown, Names known);

}  // namespace kpm::server
