#pragma once
/// Result<T>: a value or an Error, spelled like std::expected (has_value, value,
/// error) so a later switch to C++23 is a rename. Our code does not throw; throwing
/// libraries are wrapped at the call site and turned into a Result there.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace kpm {

enum class ErrorKind {
  kInvalidArgument,  ///< the caller gave something malformed
  kNotFound,         ///< a file, provider, tool or model that is not there
  kConfig,           ///< a configuration mistake (message names file, line, path)
  kIo,               ///< reading or writing failed
  kInternal,         ///< a bug
};

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}    // NOLINT(google-explicit-constructor)

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { assert(has_value()); return std::get<0>(v_); }
  const T& value() const& { assert(has_value()); return std::get<0>(v_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { assert(!has_value()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

/// For functions that return nothing on success.
struct Ok {};
using Status = Result<Ok>;

inline Error MakeError(ErrorKind kind, std::string message) {
  return Error{kind, std::move(message)};
}

}  // namespace kpm
