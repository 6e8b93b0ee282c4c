/* tests/gpu/emu/include/cuda_runtime_api.h: the CPU emulator's stand-in for CUDA's cuda_runtime_api.h (see ../cuda_emu.h). */
#include "../cuda_emu.h"
