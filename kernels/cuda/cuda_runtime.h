// The CUDA backend's entry in the device registry (kernels/device.h): its kernel table,
// device count, memory budget and decode-step graphs. kernels/device.cpp asks for it by
// name in a build with STRATA_CUDA, so nothing above kernels/ needs to know it exists.
#pragma once

#include "kernels/device.h"

namespace strata::kernels::cuda {

DeviceRuntime cuda_runtime();

}  // namespace strata::kernels::cuda
