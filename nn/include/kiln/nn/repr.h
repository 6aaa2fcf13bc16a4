#pragma once
// Formatting for Module::extra_repr(), so printed modules read like PyTorch's
// repr (numbers as Python prints them: 1e-05, 0.1, 1.0; tuples as (3, 3) and
// (768,)) with C++ spellings of booleans (true/false).
#include <cstdint>
#include <string>

#include "kiln/core/int_array_ref.h"

namespace kiln::nn::repr {

// Python's repr(float): shortest round-trip digits, positional notation for
// decimal exponents in [-4, 16), "1e-05" style otherwise; "inf", "nan".
std::string number(double value);
inline std::string number(int64_t value) { return std::to_string(value); }
inline std::string boolean(bool value) { return value ? "true" : "false"; }
// Python's tuple repr: "(3, 3)", "(768,)", "()".
std::string tuple(IntArrayRef values);
// One value when all entries are equal ("3"), else the tuple ("(3, 5)"): how
// PyTorch prints a pooling size given as an int.
std::string int_or_tuple(IntArrayRef values);

}  // namespace kiln::nn::repr
