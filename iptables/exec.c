/*
 * exec.c: dnsproxy-init's only I/O: running iptables-restore,
 * ip6tables-restore, iptables-save and nft (fork + exec, no shell, the
 * script on stdin), and reading files.
 */
#include "iptables/dpinit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The pipes of one child: stdin, stdout, stderr, exec-failure report. */
struct child {
	pid_t pid;
	int in;   /* our end of its stdin, or -1 */
	int out;  /* our end of its stdout, or -1 */
	int err;  /* our end of its stderr, or -1 */
	int fail; /* CLOEXEC pipe: carries errno when execvp fails */
};

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void
close_pair(int p[2])
{
	close_fd(&p[0]);
	close_fd(&p[1]);
}

/* In the child: wire the pipes and exec; never returns. */
static void
child_exec(const char *const *argv, int pin[2], int pout[2], int perr[2],
    int pfail[2])
{
	int e;

	if (dup2(pin[0], 0) < 0 || dup2(pout[1], 1) < 0 || dup2(perr[1], 2) < 0)
		goto fail;
	close_pair(pin);
	close_pair(pout);
	close_pair(perr);
	close_fd(&pfail[0]);
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], (char *const *)argv);
fail:
	e = errno;
	if (write(pfail[1], &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

static int
child_start(const char *const *argv, struct child *c)
{
	int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
	int pfail[2] = {-1, -1};
	int rc = 0;

	if (pipe2(pin, O_CLOEXEC) != 0 || pipe2(pout, O_CLOEXEC) != 0 ||
	    pipe2(perr, O_CLOEXEC) != 0 || pipe2(pfail, O_CLOEXEC) != 0) {
		rc = -errno;
		goto out;
	}
	if ((c->pid = fork()) < 0) {
		rc = -errno;
		goto out;
	}
	if (c->pid == 0)
		child_exec(argv, pin, pout, perr, pfail);
	c->in = pin[1];
	c->out = pout[0];
	c->err = perr[0];
	c->fail = pfail[0];
	pin[1] = pout[0] = perr[0] = pfail[0] = -1;
	fcntl(c->in, F_SETFL, O_NONBLOCK);
out:
	close_pair(pin);
	close_pair(pout);
	close_pair(perr);
	close_pair(pfail);
	return rc;
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads what is there from *fd into out (or err); closes it on EOF. */
static int
drain(int *fd, struct dpinit_buf *out, char *err, size_t errlen, size_t *errn)
{
	char buf[4096];
	ssize_t n = read(*fd, buf, sizeof(buf));
	size_t take;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	if (n == 0) {
		close_fd(fd);
		return 0;
	}
	if (out != NULL)
		return dpinit_buf_append(out, buf, (size_t)n);
	if (err != NULL && *errn + 1 < errlen) {
		take = (size_t)n < errlen - 1 - *errn ? (size_t)n
		                                      : errlen - 1 - *errn;
		memcpy(err + *errn, buf, take);
		*errn += take;
		err[*errn] = '\0';
	}
	return 0;
}

/* Feeds stdin and collects output until both outputs close. */
static int
child_io(struct child *c, const char *in, size_t inlen, struct dpinit_buf *out,
    char *err, size_t errlen, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	size_t sent = 0, errn = 0;
	struct pollfd pfd[3];
	ssize_t n;
	int rc = 0, nfd;

	if (inlen == 0)
		close_fd(&c->in);
	while (rc == 0 && (c->out >= 0 || c->err >= 0)) {
		long left = deadline - now_ms();

		if (left <= 0)
			return -ETIMEDOUT;
		nfd = 0;
		pfd[nfd++] = (struct pollfd){c->out, POLLIN, 0};
		pfd[nfd++] = (struct pollfd){c->err, POLLIN, 0};
		pfd[nfd++] = (struct pollfd){c->in, POLLOUT, 0};
		if (poll(pfd, (nfds_t)nfd, (int)left) < 0) {
			if (errno != EINTR)
				rc = -errno;
			continue;
		}
		if (c->in >= 0 && (pfd[2].revents & (POLLOUT | POLLERR))) {
			n = write(c->in, in + sent, inlen - sent);
			if (n > 0)
				sent += (size_t)n;
			if ((n < 0 && errno != EAGAIN && errno != EINTR) ||
			    sent == inlen)
				close_fd(
				    &c->in); /* EPIPE: it stopped reading */
		}
		if (c->out >= 0 && (pfd[0].revents & (POLLIN | POLLHUP)))
			rc = drain(&c->out, out, NULL, 0, NULL);
		if (rc == 0 && c->err >= 0 &&
		    (pfd[1].revents & (POLLIN | POLLHUP)))
			rc = drain(&c->err, NULL, err, errlen, &errn);
	}
	return rc;
}

int
dpinit_exec_run(const char *const *argv, const char *in, size_t inlen,
    struct dpinit_buf *out, char *err, size_t errlen, int timeout_ms,
    int *status)
{
	struct child c = {-1, -1, -1, -1, -1};
	struct sigaction ign, old;
	int rc, ws, e = 0;

	if (errlen > 0)
		err[0] = '\0';
	*status = -1;
	/* A child that exits without reading stdin must not kill us. */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, &old);
	if ((rc = child_start(argv, &c)) != 0)
		goto out;
	rc = child_io(&c, in, inlen, out, err, errlen, timeout_ms);
	if (rc != 0)
		kill(c.pid, SIGKILL);
	while (waitpid(c.pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (read(c.fail, &e, sizeof(e)) == (ssize_t)sizeof(e)) {
		rc = -e; /* -ENOENT: not installed */
		goto out;
	}
	if (rc == -ETIMEDOUT && errlen > 0)
		snprintf(err, errlen, "timed out after %d ms", timeout_ms);
	if (rc == 0 && WIFEXITED(ws))
		*status = WEXITSTATUS(ws);
	if (rc == -ETIMEDOUT)
		rc = 0; /* it ran; status -1 */
out:
	close_fd(&c.in);
	close_fd(&c.out);
	close_fd(&c.err);
	close_fd(&c.fail);
	sigaction(SIGPIPE, &old, NULL);
	return rc;
}

int
dpinit_exec_which(const char *name)
{
	const char *path = getenv("PATH");
	char dir[4096];
	const char *p, *colon;
	size_t n;
	int len;

	if (strchr(name, '/') != NULL)
		return access(name, X_OK) == 0;
	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p != '\0'; p = *colon != '\0' ? colon + 1 : colon) {
		if ((colon = strchr(p, ':')) == NULL)
			colon = p + strlen(p);
		n = (size_t)(colon - p);
		len = snprintf(dir, sizeof(dir), "%.*s/%s", (int)n,
		    n > 0 ? p : ".", name);
		if (len > 0 && (size_t)len < sizeof(dir) &&
		    access(dir, X_OK) == 0)
			return 1;
	}
	return 0;
}

int
dpinit_exec_read_file(const char *path, size_t max, struct dpinit_buf *out)
{
	char buf[4096];
	ssize_t n;
	int fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (out->len + (size_t)n > max) {
			rc = -EFBIG;
			break;
		}
		if ((rc = dpinit_buf_append(out, buf, (size_t)n)) != 0)
			break;
	}
	close(fd);
	return rc;
}

int
dpinit_exec_have_ipv6(void)
{
	return access("/proc/net/if_inet6", F_OK) == 0;
}
