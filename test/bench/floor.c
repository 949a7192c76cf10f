/*
 * floor: the latency floor of the bench harness.
 *
 * A UDP "DNS server" that does as little as a server can: one blocking
 * recvfrom() and one sendto() per datagram, the query sent back with the
 * QR bit set, no lookup, no event loop.  bench.sh runs it beside the real
 * servers in the latency phase: what it measures is the harness itself
 * (dnsperf, loopback, waking a CPU on this host), which no server that
 * sleeps between queries can go below.  A server's latency above the
 * floor's is what the server adds.
 *
 *	floor PORT	(binds 127.0.0.1:PORT; stop it with a signal)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

int
main(int argc, char **argv)
{
	struct sockaddr_in sin = {0};
	struct sockaddr_storage peer;
	socklen_t plen;
	unsigned char buf[4096];
	ssize_t n;
	long port;
	char *end;
	int fd;

	if (argc != 2 || (port = strtol(argv[1], &end, 10)) <= 0 ||
	    port > 65535 || *end != '\0') {
		fprintf(stderr, "usage: floor PORT\n");
		return 2;
	}
	if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0) {
		perror("floor: socket");
		return 1;
	}
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		fprintf(stderr, "floor: bind 127.0.0.1:%ld: ", port);
		perror(NULL);
		return 1;
	}
	for (;;) {
		plen = sizeof(peer);
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer,
		    &plen);
		if (n < 12) /* an error, or shorter than a DNS header */
			continue;
		buf[2] |= 0x80; /* QR: a response */
		(void)sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer,
		    plen);
	}
}
