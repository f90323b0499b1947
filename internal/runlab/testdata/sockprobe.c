/*
 * sockprobe: a dynamically linked C program for mptcpgd run's tests and
 * benchmarks. It makes sockets the plain way (protocol 0) and reports what
 * the kernel made of them.
 *
 *   sockprobe kinds               one line per socket kind: "tcp4 262" ...
 *   sockprobe connect HOST PORT   TCP client: prints its protocol, sends
 *                                 "hello", echoes what it reads to stdout
 *   sockprobe threads N           N threads make a TCP socket each at once;
 *                                 prints "tcp N" per protocol seen
 *   sockprobe storm THREADS N     THREADS threads make N TCP sockets in all;
 *                                 every one must be a socket of protocol 262
 *                                 other than 0, 1, 2; prints "ok N bad B"
 *   sockprobe iouring             calls io_uring_setup
 *   sockprobe bench N PROTO       N x socket(AF_INET, SOCK_STREAM, PROTO) +
 *                                 close; prints "ns/op X protocol P"
 *   sockprobe connbench HOST PORT N PROTO
 *                                 N sequential connections, each sending a
 *                                 byte, reading one back and waiting for the
 *                                 server to close; prints "ns/op X protocol P"
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_PROTOCOL
#define SO_PROTOCOL 38
#endif
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif

static int protocol(int fd)
{
	int p = -1;
	socklen_t len = sizeof(p);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &p, &len) < 0)
		return -errno;
	return p;
}

static int kinds(void)
{
	struct {
		const char *name;
		int domain, type;
	} k[] = {
		{"tcp4", AF_INET, SOCK_STREAM},
		{"tcp6", AF_INET6, SOCK_STREAM},
		{"tcp4-nonblock-cloexec", AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC},
		/* Again, each after the other kind: a converted socket of one
		 * kind must not carry the other's flags. */
		{"tcp4-again", AF_INET, SOCK_STREAM},
		{"tcp4-nonblock-cloexec-again", AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC},
		{"udp4", AF_INET, SOCK_DGRAM},
		{"udp6", AF_INET6, SOCK_DGRAM},
		{"unix-stream", AF_UNIX, SOCK_STREAM},
		{"unix-dgram", AF_UNIX, SOCK_DGRAM},
	};
	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		int fd = socket(k[i].domain, k[i].type, 0);
		if (fd < 0) {
			printf("%s error %d\n", k[i].name, errno);
			continue;
		}
		printf("%s %d\n", k[i].name, protocol(fd));
		printf("%s-flags nonblock=%d cloexec=%d\n", k[i].name,
		       (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0, (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
		close(fd);
	}
	int fd = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	printf("tcp4-explicit %d\n", protocol(fd));
	close(fd);
	return 0;
}

static int dial(const char *host, const char *port, int proto)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	int family;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		family = AF_INET;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(atoi(port));
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		family = AF_INET6;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(atoi(port));
		len = sizeof(*sin6);
	} else {
		fprintf(stderr, "sockprobe: bad address %s\n", host);
		exit(2);
	}
	int fd = socket(family, SOCK_STREAM, proto);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0) {
		perror("sockprobe: connect");
		exit(1);
	}
	return fd;
}

static int client(const char *host, const char *port)
{
	int fd = dial(host, port, 0);
	printf("protocol %d\n", protocol(fd));
	fflush(stdout);
	if (write(fd, "hello\n", 6) != 6) {
		perror("sockprobe: write");
		return 1;
	}
	shutdown(fd, SHUT_WR);
	char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, n, stdout);
	return 0;
}

static atomic_int next, bad, done, firstbad = -1;
static int total, protos[16];
static pthread_barrier_t barrier;

static void *one_socket(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&barrier);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int p = protocol(fd);
	protos[atomic_fetch_add(&next, 1)] = p;
	pthread_barrier_wait(&barrier);
	close(fd);
	return NULL;
}

static int threads(int n)
{
	pthread_t t[16];
	if (n > 16)
		n = 16;
	pthread_barrier_init(&barrier, NULL, n);
	for (int i = 0; i < n; i++)
		pthread_create(&t[i], NULL, one_socket, NULL);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < n; i++)
		printf("tcp %d\n", protos[i]);
	return 0;
}

static void *storm_worker(void *arg)
{
	(void)arg;
	while (atomic_fetch_add(&next, 1) < total) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct stat st;
		int ok = fd > 2 && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && protocol(fd) == IPPROTO_MPTCP;
		if (!ok) {
			int expected = -1;
			atomic_fetch_add(&bad, 1);
			atomic_compare_exchange_strong(&firstbad, &expected, fd < 0 ? -errno : fd);
		}
		if (fd > 2)
			close(fd);
		atomic_fetch_add(&done, 1);
	}
	return NULL;
}

static int storm(int nthreads, int n)
{
	pthread_t t[64];
	total = n;
	if (nthreads > 64)
		nthreads = 64;
	for (int i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, storm_worker, NULL);
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	printf("ok %d bad %d first-bad %d\n", atomic_load(&done) - atomic_load(&bad), atomic_load(&bad), atomic_load(&firstbad));
	return atomic_load(&bad) != 0;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int bench(int n, int proto)
{
	int fd = socket(AF_INET, SOCK_STREAM, proto);
	int p = protocol(fd);
	close(fd);
	double start = now_ns();
	for (int i = 0; i < n; i++) {
		fd = socket(AF_INET, SOCK_STREAM, proto);
		if (fd < 0) {
			perror("sockprobe: socket");
			return 1;
		}
		close(fd);
	}
	printf("ns/op %.0f protocol %d\n", (now_ns() - start) / n, p);
	return 0;
}

static int connbench(const char *host, const char *port, int n, int proto)
{
	int p = 0;
	double start = now_ns();
	for (int i = 0; i < n; i++) {
		int fd = dial(host, port, proto);
		char c = 'x';
		if (i == 0)
			p = protocol(fd);
		if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1) {
			perror("sockprobe: exchange");
			return 1;
		}
		/* The server closes first, so that TIME_WAIT stays there and the
		 * client's ports do not run out. */
		while (read(fd, &c, 1) > 0)
			;
		close(fd);
	}
	printf("ns/op %.0f protocol %d\n", (now_ns() - start) / n, p);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "kinds"))
		return kinds();
	if (argc == 4 && !strcmp(argv[1], "connect"))
		return client(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "threads"))
		return threads(atoi(argv[2]));
	if (argc == 4 && !strcmp(argv[1], "storm"))
		return storm(atoi(argv[2]), atoi(argv[3]));
	if (argc == 2 && !strcmp(argv[1], "iouring")) {
		char params[120] = {0};
		long r = syscall(__NR_io_uring_setup, 1, params);
		printf("io_uring_setup %ld\n", r < 0 ? -errno : r);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "bench"))
		return bench(atoi(argv[2]), atoi(argv[3]));
	if (argc == 6 && !strcmp(argv[1], "connbench"))
		return connbench(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
	fprintf(stderr, "usage: see the comment at the top of sockprobe.c\n");
	return 2;
}
