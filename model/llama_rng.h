/*
 * model/llama_rng.h: the random numbers of the model code: splitmix64 (seeding, stream derivation)
 * and xoshiro256** (the generator), both by Blackman & Vigna (https://prng.di.unimi.it/), plus
 * uniform and normal (Box-Muller) draws. Integer-only state updates, so streams are identical on
 * every machine. Used by llama_init_random (weights) and llama_generate (one stream per row).
 */
#ifndef GRPO2048_LLAMA_RNG_H
#define GRPO2048_LLAMA_RNG_H

#include <stdint.h>

typedef struct { uint64_t s[4]; } llama_rng;

/* splitmix64 step: advances *x and returns the next 64-bit output. */
uint64_t llama_splitmix64(uint64_t *x);

/* Seeds r from (seed, stream): distinct streams of the same seed are independent-looking sequences. */
void llama_rng_seed(llama_rng *r, uint64_t seed, uint64_t stream);

/* Next 64 random bits (xoshiro256**). */
uint64_t llama_rng_next(llama_rng *r);

/* Uniform double in [0, 1) with 53 random bits. */
double llama_rng_uniform(llama_rng *r);

/* Standard normal draw (Box-Muller, one of the pair; uses two uniforms). */
double llama_rng_normal(llama_rng *r);

#endif
