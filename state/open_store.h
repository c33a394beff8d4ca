#pragma once
/// Opening the store the config names (`state:`, docs/state.md).

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "keypool/key_state_store.h"
#include "state/store_spec.h"

namespace kpm::state {

/// The store `spec` names: an InMemoryKeyStateStore for kNone, else a
/// SharedKeyStateStore on its backend. Opening never fails: a backend that is not
/// usable yet makes the store work from memory (with one warning) until it is.
/// An invalid spec (a redis URL that does not parse) is a kConfig error.
Result<std::shared_ptr<keypool::KeyStateStore>> OpenStore(const StoreSpec& spec);

}  // namespace kpm::state
