#include "kiln/core/device.h"

#include "kiln/core/error.h"

namespace kiln {

Device::Device(const std::string& spec) : type_(kCPU), index_(-1) {
  std::string kind = spec, index;
  if (auto colon = spec.find(':'); colon != std::string::npos) {
    kind = spec.substr(0, colon);
    index = spec.substr(colon + 1);
  }
  if (kind == "cpu") {
    type_ = kCPU;
  } else if (kind == "cuda") {
    type_ = kCUDA;
  } else {
    KILN_ERROR("unknown device '", spec, "': expected cpu, cuda or cuda:N");
  }
  if (!index.empty()) {
    KILN_CHECK(index.find_first_not_of("0123456789") == std::string::npos && index.size() < 4,
               "bad device index in '", spec, "'");
    KILN_CHECK(type_ == kCUDA, "device '", spec, "': the CPU device takes no index");
    index_ = static_cast<int8_t>(std::stoi(index));
  }
}

std::string Device::str() const {
  std::string s = type_ == kCPU ? "cpu" : "cuda";
  if (index_ >= 0) s.append(":").append(std::to_string(index_));
  return s;
}

std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

}  // namespace kiln
