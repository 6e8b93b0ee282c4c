/*
 * model/chat_template.h: the prompt text for one user message (optionally after a system prompt)
 * followed by the start of the assistant's turn, in the chat formats grpo2048's models use, and
 * the token that ends the assistant's turn (where generation stops).
 *
 * Formats (what each renders for system S and user U, add_generation_prompt=True):
 *   CHAT_CHATML  "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
 *                as Qwen2/2.5's template; with no system prompt (NULL) the system block is left out
 *                (Qwen2.5's own template would insert "You are Qwen, created by Alibaba Cloud. You are a
 *                helpful assistant."; pass that text to get it). Qwen3's template renders the same.
 *   CHAT_LLAMA3  "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
 *                "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
 *                "<|start_header_id|>assistant<|end_header_id|>\n\n", as Llama 3's template, S and U
 *                trimmed of leading/trailing white space like its `| trim`; no system block for NULL.
 *                (Llama 3.1/3.2's template also writes "Cutting Knowledge Date: December 2023\nToday
 *                Date: <today>\n\n" into an always-present system block; not done here: it depends on
 *                the date.)
 *   CHAT_PLAIN   U as is; a system prompt, when given and not empty, is written before it followed
 *                by "\n\n".
 * Texts are inserted verbatim: special-token strings inside S or U are not escaped.
 */
#ifndef GRPO2048_CHAT_TEMPLATE_H
#define GRPO2048_CHAT_TEMPLATE_H

#include <stddef.h>

#include "model/tokenizer.h"

typedef enum { CHAT_PLAIN, CHAT_CHATML, CHAT_LLAMA3 } chat_format;

/* Parses "chatml", "llama3", "plain" or "auto" (case-insensitive) into *out. "auto" looks at the
 * tokenizer's tokens: <|im_start|> -> CHAT_CHATML, else <|start_header_id|> -> CHAT_LLAMA3, else
 * CHAT_PLAIN. Returns 0, or -1 with a message in err for an unknown name or "auto" without a
 * tokenizer (t may be NULL otherwise). */
int chat_format_from_name(const char *name, const tokenizer *t, chat_format *out, char *err, size_t errlen);

/* "plain", "chatml" or "llama3". */
const char *chat_format_name(chat_format f);

/* Writes the rendered prompt into out (outlen bytes, NUL-terminated when outlen > 0). system_prompt
 * may be NULL (no system block); user must not be NULL. Returns the prompt's length in bytes
 * (excluding the NUL); a result >= outlen means out was too small and holds a truncated prefix
 * (call again with result + 1 bytes). Returns -1 if the prompt would exceed INT_MAX bytes. */
int chat_render_prompt(chat_format f, const char *system_prompt, const char *user, char *out, size_t outlen);

/* The token id that ends the assistant's turn: <|im_end|> for CHAT_CHATML, <|eot_id|> for
 * CHAT_LLAMA3 (either falling back to the tokenizer's eos when the token is missing), the eos token
 * for CHAT_PLAIN. -1 if none. */
int chat_end_of_turn_id(chat_format f, const tokenizer *t);

#endif
