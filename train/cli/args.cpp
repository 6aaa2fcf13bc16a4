#include <algorithm>

#include "cli.h"

namespace kiln::cli {

std::string ParsedArgs::flag(const std::string& name) const {
  for (const auto& [k, v] : flags)
    if (k == name) return v;
  return {};
}

ParsedArgs parse_args(const std::vector<std::string>& args, const std::vector<std::string>& value_flags) {
  ParsedArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      out.help = true;
    } else if (a == "-q" || a == "--quiet") {
      out.quiet = true;
    } else if (a.rfind("--", 0) == 0) {
      std::string name = a.substr(2), value;
      const auto eq = name.find('=');
      const bool inline_value = eq != std::string::npos;
      if (inline_value) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      const bool is_set = name == "set";
      if (!is_set && std::find(value_flags.begin(), value_flags.end(), name) == value_flags.end())
        throw UsageError{"unknown option '--" + name + "'"};
      if (!inline_value) {
        if (i + 1 >= args.size()) throw UsageError{"option '--" + name + "' needs a value"};
        value = args[++i];
      }
      if (is_set) {
        if (value.find('=') == std::string::npos)
          throw UsageError{"--set takes key.path=value, got '" + value + "'"};
        out.overrides.push_back(value);
      } else {
        out.flags.emplace_back(name, value);
      }
    } else {
      out.positional.push_back(a);
    }
  }
  return out;
}

}  // namespace kiln::cli
