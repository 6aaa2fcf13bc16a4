// Printing modules as PyTorch's repr, and the number formatting extra_repr()
// uses to read like it.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "kiln/nn/module.h"
#include "kiln/nn/repr.h"

namespace kiln::nn {

namespace {
std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (;;) {
    size_t nl = text.find('\n', start);
    lines.push_back(text.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) return lines;
    start = nl + 1;
  }
}
}  // namespace

std::string indent_lines(const std::string& text, int spaces) {
  std::vector<std::string> lines = split_lines(text);
  std::string out = lines[0];
  for (size_t i = 1; i < lines.size(); ++i) {
    out += '\n';
    out.append(static_cast<size_t>(spaces), ' ');
    out += lines[i];
  }
  return out;
}

void Module::pretty_print(std::ostream& os) const {
  std::vector<std::string> lines;
  std::string extra = extra_repr();
  if (!extra.empty()) lines = split_lines(extra);
  const size_t extra_count = lines.size();
  for (const auto& item : children_) {
    std::ostringstream child;
    item.value->pretty_print(child);
    lines.push_back("(" + item.key + "): " + indent_lines(child.str(), 2));
  }
  os << name() << "(";
  if (extra_count == 1 && lines.size() == 1) {
    os << lines[0];
  } else if (!lines.empty()) {
    for (const auto& line : lines) os << "\n  " << line;
    os << "\n";
  }
  os << ")";
}

std::ostream& operator<<(std::ostream& os, const Module& module) {
  module.pretty_print(os);
  return os;
}

namespace repr {

std::string number(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  // Shortest round-trip digits in scientific form, then laid out as Python's
  // float repr does.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  size_t e = sci.find('e');
  std::string mantissa = sci.substr(0, e);
  int exponent = std::stoi(sci.substr(e + 1));
  std::string sign;
  if (mantissa[0] == '-') {
    sign = "-";
    mantissa.erase(0, 1);
  }
  std::string digits;
  for (char c : mantissa)
    if (c != '.') digits += c;
  if (exponent < -4 || exponent >= 16) {
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char exp[16];
    std::snprintf(exp, sizeof(exp), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    return out + exp;
  }
  std::string out;
  if (exponent < 0) {
    out = "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
  } else if (static_cast<size_t>(exponent) + 1 >= digits.size()) {
    out = digits + std::string(static_cast<size_t>(exponent) + 1 - digits.size(), '0') + ".0";
  } else {
    out = digits.substr(0, static_cast<size_t>(exponent) + 1) + "." + digits.substr(static_cast<size_t>(exponent) + 1);
  }
  return sign + out;
}

std::string tuple(IntArrayRef values) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < values.size(); ++i) os << (i ? ", " : "") << values[i];
  if (values.size() == 1) os << ",";
  os << ")";
  return os.str();
}

std::string int_or_tuple(IntArrayRef values) {
  bool same = true;
  for (size_t i = 1; i < values.size(); ++i) same = same && values[i] == values[0];
  return same && !values.empty() ? std::to_string(values[0]) : tuple(values);
}

}  // namespace repr
}  // namespace kiln::nn
