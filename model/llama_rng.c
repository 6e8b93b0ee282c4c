/*
 * model/llama_rng.c: splitmix64 and xoshiro256** (reference algorithms of Blackman & Vigna,
 * https://prng.di.unimi.it/), uniform doubles and Box-Muller normals. See llama_rng.h.
 */
#include "model/llama_rng.h"

#include <math.h>

uint64_t llama_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void llama_rng_seed(llama_rng *r, uint64_t seed, uint64_t stream) {
    /* Mix the stream index through its own splitmix64 output so (seed, g) and (seed+1, g-1) differ. */
    uint64_t t = stream;
    uint64_t x = seed ^ llama_splitmix64(&t);
    for (int i = 0; i < 4; i++) r->s[i] = llama_splitmix64(&x);
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0) r->s[0] = 1; /* all-zero state is a fixed point */
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t llama_rng_next(llama_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double llama_rng_uniform(llama_rng *r) {
    return (double)(llama_rng_next(r) >> 11) * 0x1.0p-53;
}

double llama_rng_normal(llama_rng *r) {
    double u1 = llama_rng_uniform(r);
    double u2 = llama_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300; /* log(0) guard; u1 == 0 has probability 2^-53 */
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}
