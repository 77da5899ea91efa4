// Dark spectra for --dark: a .npy array (float/int, any shape, flattened) or a text file of
// numbers (np.loadtxt-like: whitespace separated, '#' comments). DataError when unreadable.
#pragma once

#include <string>

#include "pace/numeric.hpp"

namespace pace {

Vec load_dark(const std::string& path);

}  // namespace pace
