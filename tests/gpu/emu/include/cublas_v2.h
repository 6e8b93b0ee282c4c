/* tests/gpu/emu/include/cublas_v2.h: the CPU emulator's stand-in for CUDA's cublas_v2.h (see ../cuda_emu.h). */
#include "../cuda_emu.h"
