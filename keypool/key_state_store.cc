#include "keypool/key_state_store.h"

namespace kpm::keypool {

std::string InMemoryKeyStateStore::Bind(const KeyIdentity& key) {
  return key.provider + "/" + std::to_string(key.index) + "/" + key.label;
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
