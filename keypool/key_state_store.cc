#include "keypool/key_state_store.h"

#include <functional>

namespace kpm::keypool {

std::string InMemoryKeyStateStore::Bind(const KeyIdentity& key) {
  // The key itself, not its place in the list: a config reload that adds, removes or
  // reorders keys keeps each remaining key's state. Never leaves the process (only
  // a hash of the secret is kept). Keys without a secret (keyless, or disabled by
  // configuration) are told apart by their place.
  std::string id = key.provider + "\n" + key.base_url + "\n";
  if (key.secret.empty()) return id + "#" + std::to_string(key.index);
  return id + std::to_string(std::hash<std::string>{}(key.secret));
}

KeyRecord InMemoryKeyStateStore::Load(const std::string& key_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = records_.find(key_id);
  return it == records_.end() ? KeyRecord{} : it->second;
}

KeyRecord InMemoryKeyStateStore::Update(const std::string& key_id,
                                        const std::function<void(KeyRecord&)>& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  KeyRecord& record = records_[key_id];
  fn(record);
  return record;
}

}  // namespace kpm::keypool
