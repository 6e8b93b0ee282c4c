/*
 * rewards/play.c: the `grpo2048 play` subcommand — plays one strategy file through the same sandboxed
 * reward pool that training uses, and prints one JSON line per game on stdout:
 *
 *   {"game":0,"seed":0,"state":"success","score":1234,"max_tile":2048,"moves":901,"seconds":0.052,"error":null}
 *
 * "seed" is the --seed value; game i is played with game_seed_mix(seed, i, 0), exactly as game i of a
 * training job whose base seed is that value. "state" is a reward_outcome name (a game outcome, or the
 * check that stopped the source: syntax_error, build_failed, banned_import, no_function).
 *
 * The file may be raw Python or a model completion: when it holds a fenced block starting with
 * `def strategy(board):` that block is played (reward_extract_strategy), otherwise the whole file.
 * Exit status: 0 whenever the games were played (whatever the strategy did), 2 on a usage error, 1 when
 * the file cannot be read or the pool cannot start; errors go to stderr with what was expected.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewards/rewards.h"

#define PLAY_MAX_FILE (4 << 20)   /* bytes of strategy file read */

static void play_usage(FILE *f) {
    fprintf(f,
            "usage: grpo2048 play --strategy FILE.py [--games N] [--seed S] [--size N] [--target T] [--timeout SEC]\n"
            "                     [--memory MIB] [--max-stuck-moves N]\n\n"
            "Plays a 2048 strategy (raw Python defining `def strategy(board):`, or a model completion with a\n"
            "```python fenced block) in the reward sandbox and prints one JSON line per game.\n\n"
            "  --strategy FILE  the strategy file (required)\n"
            "  --games N        games to play, 1..%d (default 1)\n"
            "  --seed S         base seed, an unsigned 64-bit integer (default 0); game i uses mix(S, i)\n"
            "  --size N         board side, 2..8 (default 4)\n"
            "  --target T       winning tile, a power of two 4..2^30 (default 2048)\n"
            "  --timeout SEC    wall-clock seconds per game, (0, 3600] (default 1.0)\n"
            "  --memory MIB     memory a game may add to the sandboxed process, 16..1048576 MiB (default 512)\n"
            "  --max-stuck-moves N  end a game as stuck after N moves in a row that change nothing, 1..10^9\n"
            "                   (default 1000)\n"
            "  --help           this text\n",
            REWARD_MAX_GAMES);
}

/* Parses a whole decimal integer in [lo, hi]; returns 0 or -1. */
static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
    if (!s || !*s || *s == '-' || *s == '+') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Reads the whole file (NUL-terminated, malloc'd) or returns NULL with a message in err. */
static char *read_file(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "cannot open strategy file %s: %s", path, strerror(errno)); return NULL; }
    char *buf = malloc(PLAY_MAX_FILE + 1);
    if (!buf) { fclose(f); snprintf(err, errlen, "out of memory"); return NULL; }
    size_t n = fread(buf, 1, PLAY_MAX_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); snprintf(err, errlen, "cannot read strategy file %s", path); return NULL; }
    if (n > PLAY_MAX_FILE) {
        free(buf);
        snprintf(err, errlen, "strategy file %s is larger than %d bytes", path, PLAY_MAX_FILE);
        return NULL;
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        free(buf);
        snprintf(err, errlen, "strategy file %s contains a NUL byte; expected Python text", path);
        return NULL;
    }
    return buf;
}

/* A JSON number written from an integer verbatim (cJSON numbers are doubles: 2^64-1 would round). */
static cJSON *json_u64(uint64_t v) {
    char s[32];
    snprintf(s, sizeof s, "%" PRIu64, v);
    return cJSON_CreateRaw(s);
}

int cmd_play(int argc, char **argv) {
    const char *path = NULL;
    uint64_t games = 1, seed = 0, size = 4, target = 2048;
    uint64_t memory_mib = 512, max_stuck = 1000;
    double timeout = 1.0;
    int i = 0;
    if (argc > 0 && argv[0] && argv[0][0] != '-') i = 1;   /* argv[0] is the command name */
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { play_usage(stdout); return 0; }
        const char *eq = strchr(a, '=');
        char name[32];
        const char *val;
        if (!strncmp(a, "--", 2) && eq && (size_t)(eq - a) < sizeof name) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a);
            val = i + 1 < argc ? argv[i + 1] : NULL;
            if (!strncmp(a, "--", 2) && val) i++;
        }
        if (!strcmp(name, "--strategy")) path = val;
        else if (!strcmp(name, "--games")) {
            if (parse_u64(val, 1, REWARD_MAX_GAMES, &games)) {
                fprintf(stderr, "grpo2048 play: --games %s: expected an integer from 1 to %d\n", val ? val : "(missing)",
                        REWARD_MAX_GAMES);
                return 2;
            }
        } else if (!strcmp(name, "--seed")) {
            if (parse_u64(val, 0, UINT64_MAX, &seed)) {
                fprintf(stderr, "grpo2048 play: --seed %s: expected an unsigned 64-bit integer\n", val ? val : "(missing)");
                return 2;
            }
        } else if (!strcmp(name, "--size")) {
            if (parse_u64(val, 2, 8, &size)) {
                fprintf(stderr, "grpo2048 play: --size %s: expected an integer from 2 to 8\n", val ? val : "(missing)");
                return 2;
            }
        } else if (!strcmp(name, "--target")) {
            if (parse_u64(val, 4, 1u << 30, &target) || (target & (target - 1))) {
                fprintf(stderr, "grpo2048 play: --target %s: expected a power of two from 4 to 1073741824\n",
                        val ? val : "(missing)");
                return 2;
            }
        } else if (!strcmp(name, "--memory")) {
            if (parse_u64(val, 16, 1u << 20, &memory_mib)) {
                fprintf(stderr, "grpo2048 play: --memory %s: expected MiB from 16 to 1048576\n", val ? val : "(missing)");
                return 2;
            }
        } else if (!strcmp(name, "--max-stuck-moves")) {
            if (parse_u64(val, 1, 1000000000, &max_stuck)) {
                fprintf(stderr, "grpo2048 play: --max-stuck-moves %s: expected an integer from 1 to 1000000000\n",
                        val ? val : "(missing)");
                return 2;
            }
        } else if (!strcmp(name, "--timeout")) {
            char *end = NULL;
            timeout = val ? strtod(val, &end) : 0.0;
            if (!val || !*val || *end || !(timeout > 0.0 && timeout <= 3600.0)) {
                fprintf(stderr, "grpo2048 play: --timeout %s: expected seconds in (0, 3600]\n", val ? val : "(missing)");
                return 2;
            }
        } else {
            fprintf(stderr, "grpo2048 play: unknown argument '%s'\n\n", a);
            play_usage(stderr);
            return 2;
        }
        if (!val) {
            fprintf(stderr, "grpo2048 play: %s needs a value\n", name);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "grpo2048 play: --strategy FILE.py is required\n\n");
        play_usage(stderr);
        return 2;
    }

    char err[512];
    char *text = read_file(path, err, sizeof err);
    if (!text) { fprintf(stderr, "grpo2048 play: %s\n", err); return 1; }
    /* A completion's fenced block if there is one, else the file as Python. */
    const char *source = text;
    char *block = malloc(strlen(text) + 1);
    if (block && reward_extract_strategy(text, block, strlen(text) + 1) == 0) source = block;

    reward_config cfg;
    reward_config_defaults(&cfg);
    cfg.workers = 1;
    cfg.games_per_strategy = (int)games;
    cfg.board_size = (int)size;
    cfg.target = (uint32_t)target;
    cfg.timeout = timeout;
    cfg.memory_limit = (size_t)memory_mib << 20;
    cfg.max_stuck_moves = (int)max_stuck;
    reward_game *out = calloc(games, sizeof *out);
    reward_pool *pool = out ? reward_pool_create(&cfg, err, sizeof err) : NULL;
    if (!pool) {
        fprintf(stderr, "grpo2048 play: %s\n", out ? err : "out of memory");
        free(out); free(block); free(text);
        return 1;
    }
    reward_result res;
    int rc = reward_pool_play(pool, source, seed, out, (int)games, &res, err, sizeof err);
    reward_pool_destroy(pool);
    if (rc != 0) {
        fprintf(stderr, "grpo2048 play: %s\n", err);
        free(out); free(block); free(text);
        return 1;
    }
    for (int g = 0; g < (int)games; g++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "game", cJSON_CreateNumber(g));
        cJSON_AddItemToObject(o, "seed", json_u64(seed));
        cJSON_AddItemToObject(o, "state", cJSON_CreateString(reward_outcome_name(out[g].outcome)));
        cJSON_AddItemToObject(o, "score", json_u64(out[g].score));
        cJSON_AddItemToObject(o, "max_tile", cJSON_CreateNumber(out[g].max_tile));
        cJSON_AddItemToObject(o, "moves", cJSON_CreateNumber(out[g].moves));
        char secs[32];
        snprintf(secs, sizeof secs, "%.6f", out[g].seconds);   /* microseconds: the clock's useful precision */
        cJSON_AddItemToObject(o, "seconds", cJSON_CreateRaw(secs));
        cJSON_AddItemToObject(o, "error", out[g].error[0] ? cJSON_CreateString(out[g].error) : cJSON_CreateNull());
        char *line = cJSON_PrintUnformatted(o);
        if (line) printf("%s\n", line);
        cJSON_free(line);
        cJSON_Delete(o);
    }
    fflush(stdout);
    free(out);
    free(block);
    free(text);
    return 0;
}
