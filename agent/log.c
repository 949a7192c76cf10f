/*
 * log.c: one line per event on stderr, as text or JSON.  The level, the
 * format and the rate limiter below are the only logging state.
 *
 * Warnings and errors repeat when something stays broken (an upstream down,
 * a flood of bad input, descriptors exhausted): each format string may print
 * LOG_RL_BURST lines per LOG_RL_WINDOW seconds; the rest are counted and
 * reported as one "N similar messages suppressed" line by the first line
 * of that format in a later window.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"

static enum agent_log_level log_level = LOG_LVL_INFO;
static enum agent_log_format log_format = LOG_FMT_TEXT;
static int log_queries; /* --log-queries */

static const char *const log_names[] = {"debug", "info", "warn", "error"};

#define LOG_RL_SLOTS 32  /* distinct formats tracked */
#define LOG_RL_BURST 10  /* lines per format per window */
#define LOG_RL_WINDOW 10 /* seconds */

struct log_rl {
	const char *fmt;       /* the call site's format string */
	time_t window;         /* start of its current window */
	unsigned printed;      /* lines printed in it */
	unsigned long dropped; /* lines suppressed in it */
};

static struct log_rl log_rl[LOG_RL_SLOTS];
static time_t (*log_clock)(void);

static time_t
log_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

void
agent_log_set_clock(time_t (*now)(void))
{
	log_clock = now;
	memset(log_rl, 0, sizeof(log_rl));
}

void
agent_log_setup(enum agent_log_level level, enum agent_log_format fmt)
{
	log_level = level;
	log_format = fmt;
}

void
agent_log_set_queries(int on)
{
	log_queries = on;
}

int
agent_log_queries(void)
{
	return log_queries;
}

/* JSON string body: escape quotes, backslashes and control bytes. */
static void
log_json_escape(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
}

static void log_line(enum agent_log_level level, const char *msg,
    const char *const *keys, const char *const *vals, size_t n);

/* 1 when this warning/error may print; reports what a window suppressed. */
static int
log_admit(enum agent_log_level level, const char *fmt)
{
	time_t now = (log_clock ? log_clock : log_monotonic)();
	struct log_rl *r = NULL, *oldest = &log_rl[0];
	char note[256];
	size_t i;

	for (i = 0; i < LOG_RL_SLOTS && r == NULL; i++) {
		if (log_rl[i].fmt == fmt)
			r = &log_rl[i];
		else if (log_rl[i].window < oldest->window)
			oldest = &log_rl[i];
	}
	if (r == NULL) { /* a new call site takes the stalest slot */
		r = oldest;
		memset(r, 0, sizeof(*r));
		r->fmt = fmt;
		r->window = now;
	}
	if (now - r->window >= LOG_RL_WINDOW) {
		if (r->dropped > 0) {
			snprintf(note, sizeof(note),
			    "%lu similar messages suppressed: %s", r->dropped,
			    fmt);
			log_line(level, note, NULL, NULL, 0);
		}
		r->window = now;
		r->printed = 0;
		r->dropped = 0;
	}
	if (r->printed < LOG_RL_BURST) {
		r->printed++;
		return 1;
	}
	r->dropped++;
	return 0;
}

void
agent_log(enum agent_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (level < log_level ||
	    (level >= LOG_LVL_WARN && !log_admit(level, fmt)))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_line(level, msg, NULL, NULL, 0);
}

void
agent_log_fields(enum agent_log_level level, const char *msg,
    const char *const *keys, const char *const *vals, size_t n)
{
	if (level >= log_level)
		log_line(level, msg, keys, vals, n);
}

static void
log_line(enum agent_log_level level, const char *msg, const char *const *keys,
    const char *const *vals, size_t n)
{
	char ts[32];
	struct timespec now;
	struct tm tm;
	size_t i;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_format == LOG_FMT_JSON) {
		fprintf(stderr,
		    "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"", ts,
		    now.tv_nsec / 1000000, log_names[level]);
		log_json_escape(stderr, msg);
		fputc('"', stderr);
		for (i = 0; i < n; i++) {
			fputs(",\"", stderr);
			log_json_escape(stderr, keys[i]);
			fputs("\":\"", stderr);
			log_json_escape(stderr, vals[i]);
			fputc('"', stderr);
		}
		fputs("}\n", stderr);
		return;
	}
	fprintf(stderr, "%s.%03ldZ %-5s %s", ts, now.tv_nsec / 1000000,
	    log_names[level], msg);
	for (i = 0; i < n; i++)
		fprintf(stderr, " %s=%s", keys[i], vals[i]);
	fputc('\n', stderr);
}
