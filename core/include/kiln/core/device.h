#pragma once
// Where a tensor lives. CUDA devices carry an index; the CPU has one device.
#include <cstdint>
#include <ostream>
#include <string>

namespace kiln {

enum class DeviceType : int8_t { CPU, CUDA };
inline constexpr DeviceType kCPU = DeviceType::CPU;
inline constexpr DeviceType kCUDA = DeviceType::CUDA;

class Device {
 public:
  Device(DeviceType type, int index = -1) : type_(type), index_(static_cast<int8_t>(index)) {}  // NOLINT
  // "cpu", "cuda", "cuda:1".
  explicit Device(const std::string& spec);

  DeviceType type() const { return type_; }
  int index() const { return index_; }
  bool has_index() const { return index_ >= 0; }
  bool is_cpu() const { return type_ == kCPU; }
  bool is_cuda() const { return type_ == kCUDA; }
  std::string str() const;

  bool operator==(const Device& o) const {
    // cuda and cuda:0 name the same device once resolved; compare resolved forms.
    return type_ == o.type_ && resolved_index() == o.resolved_index();
  }
  bool operator!=(const Device& o) const { return !(*this == o); }

 private:
  int resolved_index() const { return type_ == kCPU ? -1 : (index_ < 0 ? 0 : index_); }
  DeviceType type_;
  int8_t index_;
};

std::ostream& operator<<(std::ostream& os, const Device& d);

}  // namespace kiln
