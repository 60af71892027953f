#include "rewards/rule_library.h"

namespace grpo::rewards {

const RuleLibraryModule* find_rule_library_module(std::string_view name) {
  for (const RuleLibraryModule& module : rule_library_modules()) {
    if (module.name == name) return &module;
  }
  return nullptr;
}

}  // namespace grpo::rewards
