// libFuzzer target: the binary decoder (evs::decode with Encoding::binary) on arbitrary bytes.
#include "fuzz_target.hpp"
#include "codec_type.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  evs_fuzz::check_codec({reinterpret_cast<const char*>(data), size}, evs::Encoding::binary);
  return 0;
}
