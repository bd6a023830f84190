// The libFuzzer entry point every target in this directory defines (replay_main.cpp calls it without libFuzzer).
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
