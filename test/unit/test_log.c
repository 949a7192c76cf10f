/* Unit tests for agent/log.c: formats and the warning rate limiter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"

static time_t fake_now;

static time_t
fake_clock(void)
{
	return fake_now;
}

static char path[] = "/tmp/dnsproxy-test-log.XXXXXX";
static int saved_stderr = -1; /* cmocka reports failures on stderr */

/* Points stderr at a fresh scratch file. */
static int
capture(void **state)
{
	int fd = mkstemp(path);

	(void)state;
	fflush(stderr);
	if (fd < 0 || (saved_stderr = dup(STDERR_FILENO)) < 0 ||
	    dup2(fd, STDERR_FILENO) < 0)
		return -1;
	close(fd);
	fake_now = 1000;
	agent_log_set_clock(fake_clock);
	agent_log_setup(LOG_LVL_INFO, LOG_FMT_TEXT);
	return 0;
}

static int
release(void **state)
{
	(void)state;
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	unlink(path);
	memcpy(path + strlen(path) - 6, "XXXXXX", 6);
	return 0;
}

/* Lines written so far that contain needle. */
static int
count_lines(const char *needle)
{
	char line[2048];
	FILE *f;
	int n = 0;

	fflush(stderr);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	fclose(f);
	return n;
}

static void
test_repeated_warnings_are_suppressed_and_counted(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < 25; i++)
		agent_log(LOG_LVL_WARN, "upstream %d down", i);
	assert_int_equal(count_lines("upstream"), 10);
	assert_int_equal(count_lines("suppressed"), 0);
	fake_now += 10; /* the next window */
	agent_log(LOG_LVL_WARN, "upstream %d down", 99);
	assert_int_equal(
	    count_lines("15 similar messages suppressed: upstream %d down"), 1);
	assert_int_equal(count_lines("upstream 99 down"), 1);
}

static void
test_formats_are_limited_separately_and_info_never(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < 20; i++) {
		agent_log(LOG_LVL_ERROR, "bad packet %d", i);
		agent_log(LOG_LVL_WARN, "other %d", i);
		agent_log(LOG_LVL_INFO, "query %d", i);
	}
	assert_int_equal(count_lines("bad packet"), 10);
	assert_int_equal(count_lines("other"), 10);
	assert_int_equal(count_lines("query"), 20);
}

static void
test_json_lines_escape_the_message(void **state)
{
	(void)state;
	agent_log_setup(LOG_LVL_DEBUG, LOG_FMT_JSON);
	agent_log(LOG_LVL_DEBUG, "quote \" backslash \\ tab \t end");
	assert_int_equal(count_lines("\"level\":\"debug\",\"msg\":\"quote \\\" "
	                             "backslash \\\\ tab \\u0009 end\"}"),
	    1);
	agent_log_setup(LOG_LVL_WARN, LOG_FMT_TEXT);
	agent_log(LOG_LVL_INFO, "hidden below the level");
	assert_int_equal(count_lines("hidden"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_repeated_warnings_are_suppressed_and_counted, capture,
	        release),
	    cmocka_unit_test_setup_teardown(
	        test_formats_are_limited_separately_and_info_never, capture,
	        release),
	    cmocka_unit_test_setup_teardown(test_json_lines_escape_the_message,
	        capture, release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
