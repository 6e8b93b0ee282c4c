/*
 * model/chat_template.c: renders one-turn chat prompts (ChatML, Llama 3, plain) and picks the
 * end-of-turn token; see model/chat_template.h for the exact texts. Rendering appends pieces into
 * a bounded buffer while counting the full length (snprintf-style), so callers can size buffers.
 */
#include "model/chat_template.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CT_ASSERT(c) do { if (!(c)) { fprintf(stderr, "%s:%d: chat_template: assertion failed: %s\n", \
    __FILE__, __LINE__, #c); abort(); } } while (0)

typedef struct { char *out; size_t cap, len; } sink;

static void put(sink *s, const char *p, size_t n) {
    if (s->len < s->cap) {
        size_t room = s->cap - 1 - s->len;
        memcpy(s->out + s->len, p, n < room ? n : room);
    }
    s->len += n;
}

static void puts_(sink *s, const char *p) { put(s, p, strlen(p)); }

/* Appends p without leading/trailing white space (ASCII space, \t \n \v \f \r and the separators
 * 0x1C-0x1F that Python's str.strip, behind Jinja's trim, also removes). */
static void put_trimmed(sink *s, const char *p) {
    size_t a = 0, b = strlen(p);
#define WS(c) ((c) == ' ' || ((c) >= '\t' && (c) <= '\r') || ((c) >= 0x1C && (c) <= 0x1F))
    while (a < b && WS((unsigned char)p[a])) a++;
    while (b > a && WS((unsigned char)p[b - 1])) b--;
#undef WS
    put(s, p + a, b - a);
}

int chat_render_prompt(chat_format f, const char *system_prompt, const char *user, char *out, size_t outlen) {
    CT_ASSERT(user && (out || outlen == 0));
    sink s = { out, outlen, 0 };
    switch (f) {
    case CHAT_CHATML:
        if (system_prompt) {
            puts_(&s, "<|im_start|>system\n");
            puts_(&s, system_prompt);
            puts_(&s, "<|im_end|>\n");
        }
        puts_(&s, "<|im_start|>user\n");
        puts_(&s, user);
        puts_(&s, "<|im_end|>\n<|im_start|>assistant\n");
        break;
    case CHAT_LLAMA3:
        puts_(&s, "<|begin_of_text|>");
        if (system_prompt) {
            puts_(&s, "<|start_header_id|>system<|end_header_id|>\n\n");
            put_trimmed(&s, system_prompt);
            puts_(&s, "<|eot_id|>");
        }
        puts_(&s, "<|start_header_id|>user<|end_header_id|>\n\n");
        put_trimmed(&s, user);
        puts_(&s, "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case CHAT_PLAIN:
        if (system_prompt && system_prompt[0]) {
            puts_(&s, system_prompt);
            puts_(&s, "\n\n");
        }
        puts_(&s, user);
        break;
    default:
        CT_ASSERT(!"unknown chat_format");
    }
    if (outlen) out[s.len < outlen ? s.len : outlen - 1] = 0;
    return s.len > INT_MAX ? -1 : (int)s.len;
}

int chat_format_from_name(const char *name, const tokenizer *t, chat_format *out, char *err, size_t errlen) {
    CT_ASSERT(name && out);
    if (strcasecmp(name, "chatml") == 0) *out = CHAT_CHATML;
    else if (strcasecmp(name, "llama3") == 0) *out = CHAT_LLAMA3;
    else if (strcasecmp(name, "plain") == 0) *out = CHAT_PLAIN;
    else if (strcasecmp(name, "auto") == 0) {
        if (!t) {
            if (err && errlen) snprintf(err, errlen, "chat format \"auto\" needs a tokenizer to look at");
            return -1;
        }
        if (tokenizer_token_id(t, "<|im_start|>") >= 0) *out = CHAT_CHATML;
        else if (tokenizer_token_id(t, "<|start_header_id|>") >= 0) *out = CHAT_LLAMA3;
        else *out = CHAT_PLAIN;
    } else {
        if (err && errlen)
            snprintf(err, errlen, "unknown chat format \"%s\" (expected chatml, llama3, plain or auto)", name);
        return -1;
    }
    return 0;
}

const char *chat_format_name(chat_format f) {
    switch (f) {
    case CHAT_PLAIN: return "plain";
    case CHAT_CHATML: return "chatml";
    case CHAT_LLAMA3: return "llama3";
    }
    CT_ASSERT(!"unknown chat_format");
    return NULL;
}

int chat_end_of_turn_id(chat_format f, const tokenizer *t) {
    CT_ASSERT(t);
    int id = -1;
    if (f == CHAT_CHATML) id = tokenizer_token_id(t, "<|im_end|>");
    else if (f == CHAT_LLAMA3) id = tokenizer_token_id(t, "<|eot_id|>");
    return id >= 0 ? id : tokenizer_eos_id(t);
}
