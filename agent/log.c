/*
 * log.c: one line per event on stderr, as text or JSON.  The level and
 * format are the only logging state (set at start-up).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"

static enum agent_log_level log_level = LOG_LVL_INFO;
static enum agent_log_format log_format = LOG_FMT_TEXT;

static const char *const log_names[] = {"debug", "info", "warn", "error"};

void
agent_log_setup(enum agent_log_level level, enum agent_log_format fmt)
{
	log_level = level;
	log_format = fmt;
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

void
agent_log(enum agent_log_level level, const char *fmt, ...)
{
	char msg[1024], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;

	if (level < log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_format == LOG_FMT_JSON) {
		fprintf(stderr,
		    "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\","
		    "\"msg\":\"",
		    ts, now.tv_nsec / 1000000, log_names[level]);
		log_json_escape(stderr, msg);
		fputs("\"}\n", stderr);
	} else
		fprintf(stderr, "%s.%03ldZ %-5s %s\n", ts,
		    now.tv_nsec / 1000000, log_names[level], msg);
}
