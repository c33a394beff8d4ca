#include "server/complete_schema.h"

namespace kpm::server {

nlohmann::json CompleteInputSchema() {
  using Json = nlohmann::json;
  Json message = {{"type", "object"},
                  {"properties",
                   {{"role", {{"type", "string"}, {"enum", {"system", "user", "assistant"}}}},
                    {"content", {{"type", "string"}}}}},
                  {"required", {"role", "content"}},
                  {"additionalProperties", false}};
  return {{"type", "object"},
          {"properties",
           {{"prompt", {{"type", "string"}, {"description", "The user prompt. Give this or `messages`."}}},
            {"messages",
             {{"type", "array"},
              {"items", message},
              {"minItems", 1},
              {"description", "The conversation. Give this or `prompt`."}}},
            {"system", {{"type", "string"}, {"description", "System prompt."}}},
            {"provider", {{"type", "string"}, {"description", "Provider name from the config (default: the default provider)."}}},
            {"model", {{"type", "string"}, {"description", "Model id (default: the provider's configured model)."}}},
            {"max_tokens", {{"type", "integer"}, {"minimum", 1}, {"maximum", 10000000}}},
            {"temperature", {{"type", "number"}, {"minimum", 0}, {"maximum", 2}}}}},
          {"additionalProperties", false}};
}

}  // namespace kpm::server
