// Fuzz entry points for the device plugin's parsers of untrusted input: the
// `hami.io/vgpu-devices-to-allocate` annotation, device-config.yaml and pod objects from the
// API. libFuzzer binaries (Clang) call them; corpus_test.cc replays corpus/ in every test run.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hami::deviceplugin::fuzz {

void ToAllocate(const uint8_t* data, size_t size);
void DeviceConfig(const uint8_t* data, size_t size);
void PodObject(const uint8_t* data, size_t size);

}  // namespace hami::deviceplugin::fuzz
