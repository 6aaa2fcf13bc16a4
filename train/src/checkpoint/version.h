#pragma once
// The Kiln version checkpoints record (the kiln_version attribute). It is the
// CMake project version, passed in by train/CMakeLists.txt, so there is one
// place to bump it.
#ifndef KILN_VERSION_STRING
#error "KILN_VERSION_STRING is defined by train/CMakeLists.txt from project(Kiln VERSION ...)"
#endif

namespace kiln::train::detail {

inline constexpr const char* kKilnVersion = KILN_VERSION_STRING;

}  // namespace kiln::train::detail
