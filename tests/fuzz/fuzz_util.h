#pragma once
// Helpers shared by the fuzz targets of tests/fuzz (not product code).
//
// Input layout of the targets that need choices besides the text they parse: the text, then
// optionally a NUL byte and "choice" bytes (which field, which value, how to split). Inputs
// without a NUL (the seed files, as published) are all text, and their choices default to
// bytes derived from the text, so every seed exercises some field; the fuzzer reaches the
// others by appending a NUL and choice bytes.
//
// A property that does not hold is reported with FUZZ_CHECK, which prints what failed and
// aborts: libFuzzer then keeps the input as a crash. Single-threaded; no state across calls.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace kpc::fuzz {

[[noreturn]] inline void PropertyFailed(const char* file, int line, const char* cond,
                                        const std::string& detail) {
  std::fprintf(stderr, "%s:%d: property failed: %s\n%s\n", file, line, cond, detail.c_str());
  std::abort();
}

#define FUZZ_CHECK(cond, detail)                                                   \
  do {                                                                             \
    if (!(cond)) ::kpc::fuzz::PropertyFailed(__FILE__, __LINE__, #cond, (detail)); \
  } while (0)

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The text and the choice bytes of an input (see above).
class Input {
 public:
  Input(const uint8_t* data, size_t size) {
    std::string_view all = AsText(data, size);
    size_t nul = all.rfind('\0');
    if (nul == std::string_view::npos) {
      text_ = all;
      // Choices from the text: a cheap hash, so that different seeds pick different fields.
      uint32_t h = 2166136261u;
      for (char c : all) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
      for (size_t i = 0; i < sizeof derived_; ++i) {
        if (i % 4 == 0) h = (h ^ static_cast<uint32_t>(i)) * 16777619u;
        derived_[i] = static_cast<char>(h >> (8 * (i % 4)));
      }
      choices_ = std::string_view(derived_, sizeof derived_);
    } else {
      text_ = all.substr(0, nul);
      choices_ = all.substr(nul + 1);
    }
  }

  std::string_view text() const { return text_; }
  // The next choice byte; 0 once they run out.
  uint8_t Byte() {
    if (choices_.empty()) return 0;
    uint8_t b = static_cast<uint8_t>(choices_.front());
    choices_.remove_prefix(1);
    return b;
  }
  // A choice in [0, n).
  size_t Pick(size_t n) { return n == 0 ? 0 : (static_cast<size_t>(Byte()) << 8 | Byte()) % n; }
  // The choice bytes not used yet, as text (e.g. a value to set).
  std::string_view RestOfChoices() {
    std::string_view r = choices_;
    choices_ = {};
    return r;
  }

 private:
  std::string_view text_;
  std::string_view choices_;
  char derived_[8] = {};
};

}  // namespace kpc::fuzz
