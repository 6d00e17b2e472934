/*
 * log: one line per event on stderr, "2026-11-26T07:05:12.345Z level msg".
 *
 * Every line keeps that form whatever msg holds: names, ids and reasons
 * that clients chose are written with their control characters (C0, DEL,
 * C1, U+2028, U+2029) as \xNN or \uNNNN, bytes that are not UTF-8 as \xNN
 * and a backslash as two, so that no input can start a line of its own or
 * send a terminal escape.  A message is cut after 2048 bytes, marked
 * "(truncated)".
 *
 * The levels are LOG_LEVEL_*: <syslog.h> has LOG_INFO and LOG_DEBUG.
 */
#ifndef MQLOCK_IO_LOG_H
#define MQLOCK_IO_LOG_H

#include <stddef.h>

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG
};

/*
 * log_escape(s, len, out, size): s[0..len) as log lines write it, escaped
 * as above, NUL-terminated in out; what does not fit in size bytes is cut
 * between characters (4 * len + 1 bytes always suffice).  Returns the
 * length written.  For other text that shows what clients sent, such as
 * mqlock's output on a terminal.
 */
size_t log_escape(const char *s, size_t len, char *out, size_t size);

/* log_set_level(l): lines above l are dropped.  Default LOG_LEVEL_INFO. */
void log_set_level(enum log_level l);

/*
 * log_parse_level(s, &out): "error", "warn", "info" or "debug".
 * Returns 0, or -1 if s is none of these.
 */
int log_parse_level(const char *s, enum log_level *out);

/* log_enabled(l): whether a line at level l would be written. */
int log_enabled(enum log_level l);

/* log_msg(l, fmt, ...): write one line if l is enabled.  Thread-safe. */
void log_msg(enum log_level l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * log_limited(l, fmt, ...): like log_msg, for lines that input from the
 * network can cause (rejected requests).  At most a burst of 20 such lines
 * and then 5 a second are written, so a flood cannot fill the disk; the
 * next line that gets through comes after a line "N similar lines
 * suppressed" at its level.
 */
void log_limited(enum log_level l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * log_hold(): from now on info and debug lines wait in a buffer until
 * log_flush() (or until 64 KB are waiting), so that a busy loop writes its
 * lines with one write(2) per round instead of one per line; warnings and
 * errors are written at once, after any lines waiting before them.  Call it
 * before anything else is written to stderr.
 */
void log_hold(void);

/* log_flush(): write the lines log_hold() kept waiting.  Thread-safe. */
void log_flush(void);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
