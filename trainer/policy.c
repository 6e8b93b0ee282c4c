/*
 * trainer/policy.c: command-line → config, loading the policy, and the optimizer's and reward pool's settings
 * from the config (see policy.h).
 */
#include "trainer/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "trainer/dist.h"

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int parse_args(int argc, char **argv, const char *command, grpo_config *c, char *err, size_t errlen);

int policy_parse_args(int argc, char **argv, const char *command, grpo_config *c, char *err, size_t errlen) {
    config_defaults(c);
    int rc = parse_args(argc, argv, command, c, err, errlen);
    if (rc != 0) config_free(c);   /* on --help or an error the caller exits with nothing to free */
    return rc;
}

/* The argument after --resume is its value when it is "latest", an existing folder, or a path that is
 * neither an existing file nor named like a config (*.yaml, *.yml) — so `--resume /no/such/path` is
 * said not to exist, while `--resume CONFIG.yaml` still reads as "resume the latest, config
 * CONFIG.yaml". */
static int resume_value_at(int argc, char **argv, int i) {
    if (i + 1 >= argc) return 0;
    const char *v = argv[i + 1];
    struct stat st;
    if (!strcmp(v, "latest")) return 1;
    if (v[0] == '-' || !v[0]) return 0;
    if (stat(v, &st) == 0) return S_ISDIR(st.st_mode);
    size_t n = strlen(v);
    int yaml = (n > 5 && !strcmp(v + n - 5, ".yaml")) || (n > 4 && !strcmp(v + n - 4, ".yml"));
    return !yaml;
}

static int parse_args(int argc, char **argv, const char *command, grpo_config *c, char *err, size_t errlen) {
    const char *path = NULL, *resume = NULL;
    const int train = !strcmp(command, "train");
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: grpo2048 %s CONFIG.yaml [--set key=value ...]%s\n\n", command,
                   train ? " [--resume [CHECKPOINT_DIR|latest]]" : "");
            if (train)
                printf("--resume continues a run from a checkpoint folder, or from the newest checkpoint-N in\n"
                       "output_dir (latest, the default): weights, optimizer, schedule, step, random streams and the\n"
                       "run's rows in metrics.sqlite. Same as --set resume_from_checkpoint=...\n\n");
            printf("Data-parallel: mpirun -np N grpo2048 %s CONFIG.yaml runs N ranks (one per GPU, or several per\n"
                   "node on the CPU); per_device_train_batch_size is per rank, so a step's batch is N times larger;\n"
                   "rank 0 writes metrics and checkpoints%s (docs/scale.md).\n\n", command,
                   train ? "; --resume needs the same N" : "");
            printf("Keys (YAML, or --set with dotted names such as rewards.workers=2):\n\n");
            config_print_help(stdout, command);
            return 1;
        }
    }
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--set")) {
            if (i + 1 >= argc) { snprintf(err, errlen, "--set: expected key=value after --set"); return -1; }
            i++;
            continue;
        }
        if (!strncmp(argv[i], "--set=", 6)) continue;
        if (train && !strcmp(argv[i], "--resume")) {
            if (resume_value_at(argc, argv, i)) resume = argv[++i];
            else resume = "latest";
            continue;
        }
        if (train && !strncmp(argv[i], "--resume=", 9)) {
            resume = argv[i] + 9;
            if (!resume[0]) { snprintf(err, errlen, "--resume=: expected a checkpoint folder or 'latest'"); return -1; }
            continue;
        }
        if (argv[i][0] == '-') {
            snprintf(err, errlen, "unknown option '%s' (expected CONFIG.yaml [--set key=value ...]%s; see --help)", argv[i],
                     train ? " [--resume [CHECKPOINT_DIR|latest]]" : "");
            return -1;
        }
        if (path) { snprintf(err, errlen, "more than one config file given: '%s' and '%s'", path, argv[i]); return -1; }
        path = argv[i];
    }
    if (!path) { snprintf(err, errlen, "no config file given (usage: grpo2048 %s CONFIG.yaml [--set key=value ...])", command); return -1; }
    if (config_load_file(c, path, err, errlen) != 0) return -1;
    for (int i = 0; i < argc; i++) {
        const char *a = NULL;
        if (!strcmp(argv[i], "--set")) a = argv[++i];
        else if (!strncmp(argv[i], "--set=", 6)) a = argv[i] + 6;
        if (a && config_set(c, a, err, errlen) != 0) return -1;
    }
    if (resume) {
        /* the command line wins over a resume_from_checkpoint key, as a --set would */
        free(c->resume_from_checkpoint);
        c->resume_from_checkpoint = strdup(resume);
        if (!c->resume_from_checkpoint) { snprintf(err, errlen, "out of memory"); return -1; }
    }
    return config_validate(c, command, err, errlen) == 0 ? 0 : -1;
}

int policy_load(policy *p, const grpo_config *c, int from_scratch, char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    const char *dir = c->model_name_or_path;
    if (from_scratch) {
        char path[4096];
        snprintf(path, sizeof path, "%s/config.json", dir);
        llama_config lc;
        if (llama_config_from_json(&lc, path, err, errlen) != 0) return -1;
        if (llama_init_random(&p->model, &lc, (uint64_t)c->seed, 0.02f) != 0) {
            snprintf(err, errlen, "%s: cannot allocate the model", path);
            return -1;
        }
    } else if (llama_load(&p->model, dir, err, errlen) != 0) {
        return -1;
    }
    p->tok = tokenizer_load(dir, err, errlen);
    if (!p->tok) { llama_free(&p->model); return -1; }
    if (tokenizer_vocab_size(p->tok) > p->model.cfg.vocab_size) {
        snprintf(err, errlen, "%s: the tokenizer has %d tokens but config.json's vocab_size is %d", dir,
                 tokenizer_vocab_size(p->tok), p->model.cfg.vocab_size);
        policy_free(p);
        return -1;
    }
    if (chat_format_from_name(c->chat_template, p->tok, &p->chat, err, errlen) != 0) { policy_free(p); return -1; }
    p->num_stop = 0;
    int eot = chat_end_of_turn_id(p->chat, p->tok);
    if (eot >= 0) p->stop_ids[p->num_stop++] = eot;
    for (int i = 0; i < p->model.cfg.num_eos && p->num_stop < 9; i++) {
        int id = p->model.cfg.eos_token_ids[i];
        if (id >= 0 && !policy_is_stop(p, id)) p->stop_ids[p->num_stop++] = id;
    }
    int teos = tokenizer_eos_id(p->tok);
    if (teos >= 0 && !policy_is_stop(p, teos) && p->num_stop < 9) p->stop_ids[p->num_stop++] = teos;
    if (p->num_stop == 0) {
        snprintf(err, errlen, "%s: no end-of-sequence token (config.json eos_token_id, tokenizer_config.json eos_token)", dir);
        policy_free(p);
        return -1;
    }
    p->pad_id = tokenizer_pad_id(p->tok);
    if (p->pad_id < 0) p->pad_id = p->stop_ids[0];
    return 0;
}

void policy_free(policy *p) {
    if (p->tok) tokenizer_free(p->tok);
    p->tok = NULL;
    llama_free(&p->model);
}

int policy_is_stop(const policy *p, int id) {
    for (int i = 0; i < p->num_stop; i++) if (p->stop_ids[i] == id) return 1;
    return 0;
}

int *policy_encode_text(const policy *p, const char *text, int *n, char *err, size_t errlen) {
    size_t len = strlen(text);
    int cap = (int)len + 16;
    int *ids = malloc(sizeof(int) * cap);
    if (!ids) { snprintf(err, errlen, "out of memory"); return NULL; }
    int k = tokenizer_encode(p->tok, text, len, ids, cap);
    if (k > cap) {
        free(ids);
        cap = k;
        ids = malloc(sizeof(int) * cap);
        if (!ids) { snprintf(err, errlen, "out of memory"); return NULL; }
        k = tokenizer_encode(p->tok, text, len, ids, cap);
    }
    if (k < 0) { free(ids); snprintf(err, errlen, "the tokenizer could not encode the text"); return NULL; }
    *n = k;
    return ids;
}

int *policy_encode_prompt(const policy *p, const char *system_prompt, const char *user, int *n,
                          char *err, size_t errlen) {
    const char *sys = system_prompt && system_prompt[0] ? system_prompt : NULL;
    int need = chat_render_prompt(p->chat, sys, user, NULL, 0);
    char *text = malloc((size_t)need + 1);
    if (!text) { snprintf(err, errlen, "out of memory"); return NULL; }
    chat_render_prompt(p->chat, sys, user, text, (size_t)need + 1);
    int *ids = policy_encode_text(p, text, n, err, errlen);
    free(text);
    return ids;
}

char *policy_decode(const policy *p, const int *ids, int n) {
    size_t cap = (size_t)n * 8 + 16;
    char *out = malloc(cap);
    if (!out) return NULL;
    int k = tokenizer_decode(p->tok, ids, n, 1, out, cap);
    if (k >= 0 && (size_t)k >= cap) {
        free(out);
        cap = (size_t)k + 1;
        out = malloc(cap);
        if (!out) return NULL;
        tokenizer_decode(p->tok, ids, n, 1, out, cap);
    }
    if (k < 0) out[0] = '\0';
    return out;
}

unsigned char *policy_decay_mask(const llama_model *m) {
    unsigned char *decay = malloc(m->num_params ? m->num_params : 1);
    if (!decay) return NULL;
    for (int i = 0; i < m->num_tensors; i++) {
        const llama_tensor *t = &m->tensors[i];
        memset(decay + (t->data - m->params), t->decay ? 1 : 0, t->numel);
    }
    return decay;
}

reward_config policy_reward_config(const grpo_config *c) {
    reward_config rc;
    reward_config_defaults(&rc);
    rc.parallel = c->rewards.parallel;
    rc.workers = c->rewards.workers ? c->rewards.workers : dist_default_workers(sysconf(_SC_NPROCESSORS_ONLN));
    rc.timeout = c->rewards.timeout;
    rc.games_per_strategy = c->rewards.games_per_strategy;
    rc.board_size = c->rewards.board_size;
    rc.target = (uint32_t)c->rewards.target;
    rc.probability_fours = c->rewards.probability_fours;
    rc.max_stuck_moves = c->rewards.max_stuck_moves;
    rc.memory_limit = (size_t)c->rewards.memory_limit_mb << 20;
    config_reward_weights(c, rc.weights);
    if (!rc.parallel) rc.workers = 1;
    return rc;
}

adamw_hparams policy_adamw_hparams(const grpo_config *c) {
    adamw_hparams h = {(float)c->learning_rate, (float)c->adam_beta1, (float)c->adam_beta2, (float)c->adam_epsilon,
                       (float)c->weight_decay};
    return h;
}

/* See policy.h. Invalid input is replaced as Python's bytes.decode("utf-8", errors="replace") and the
 * Unicode standard's "maximal subpart" practice do. */
char *policy_utf8_valid_copy(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out) return NULL;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        /* k: bytes of the longest well-formed prefix of the sequence starting at i (Unicode's
         * "maximal subpart": one U+FFFD replaces all of it when the sequence is incomplete) */
        size_t k = len ? 1 : 0;
        while (len && k < len && i + k < n) {
            unsigned b = u[i + k];
            unsigned lo = 0x80, hi = 0xBF;
            if (k == 1 && c == 0xE0) lo = 0xA0;
            if (k == 1 && c == 0xED) hi = 0x9F;
            if (k == 1 && c == 0xF0) lo = 0x90;
            if (k == 1 && c == 0xF4) hi = 0x8F;
            if (b < lo || b > hi) break;
            k++;
        }
        if (len && k == len) { memcpy(o, s + i, len); o += len; i += len; }
        else { memcpy(o, "\xEF\xBF\xBD", 3); o += 3; i += k ? k : 1; }
    }
    *o = 0;
    return out;
}
