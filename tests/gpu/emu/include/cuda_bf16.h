/* tests/gpu/emu/include/cuda_bf16.h: the CPU emulator's stand-in for CUDA's cuda_bf16.h (see ../cuda_emu.h). */
#include "../cuda_emu.h"
