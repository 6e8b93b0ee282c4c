/*
 * trainer/stop_signal.h: the graceful stop of `grpo2048 train` and `grpo2048 sft`. The first SIGINT or
 * SIGTERM prints what will happen and sets a flag that the command's loop reads between steps (it then
 * finishes the step, saves and exits 128 + the signal); a second one takes the default action and ends
 * the process at once, which is safe because metrics.sqlite is transactional and every file is written
 * atomically.
 */
#ifndef GRPO2048_STOP_SIGNAL_H
#define GRPO2048_STOP_SIGNAL_H

/* Installs the handlers for SIGINT and SIGTERM (SA_RESETHAND). message: printed (with a newline before
 * it) on the first signal, e.g. "grpo2048 sft: stopping after this step, then saving the model"; kept
 * by pointer, so it must outlive the run (a string literal). */
void stop_signal_install(const char *message);

/* 0 until a signal arrived, then its number (SIGINT 2, SIGTERM 15). */
int stop_signal_received(void);

#endif
