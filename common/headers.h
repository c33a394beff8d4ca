#pragma once
/// HTTP response headers as the keypool and providers see them: names lower-cased,
/// one value per name (a repeated header keeps its last value).

#include <map>
#include <string>

namespace kpm {

using Headers = std::map<std::string, std::string>;

}  // namespace kpm
