#include "keypool/outcome.h"

namespace kpm::keypool {

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk: return "ok";
    case Outcome::kRateLimited: return "rate_limited";
    case Outcome::kQuotaExhausted: return "quota_exhausted";
    case Outcome::kAuthError: return "auth_error";
    case Outcome::kServerError: return "server_error";
    case Outcome::kNetworkError: return "network_error";
    case Outcome::kTimeout: return "timeout";
    case Outcome::kContextTooLong: return "context_too_long";
    case Outcome::kBadRequest: return "bad_request";
    case Outcome::kCancelled: return "cancelled";
  }
  return "unknown";
}

}  // namespace kpm::keypool
