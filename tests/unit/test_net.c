/*
 * test_net: net_nodelay_all() on real loopback sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/net.h"

static int
cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	assert_true(fl != -1);
	return (fl & FD_CLOEXEC) != 0;
}

static int
nodelay(int fd)
{
	int on = -1;
	socklen_t len = sizeof(on);

	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len),
	    0);
	return on;
}

/* A listener on 127.0.0.1 (or ::1 when v6), any port; its address in ss. */
static int
listener(int v6, struct sockaddr_storage *ss, socklen_t *sslen)
{
	int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);

	if (fd == -1)
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		*sslen = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*sslen = sizeof(*a);
	}
	if (bind(fd, (struct sockaddr *)ss, *sslen) == -1 ||
	    listen(fd, 4) == -1 ||
	    getsockname(fd, (struct sockaddr *)ss, sslen) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
connected_pair(int v6)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int lfd, cfd, afd;

	lfd = listener(v6, &ss, &sslen);
	if (lfd == -1 && v6)
		skip();
	assert_true(lfd >= 0);
	cfd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	assert_true(cfd >= 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&ss, sslen), 0);
	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);

	assert_int_equal(nodelay(cfd), 0);
	assert_int_equal(nodelay(afd), 0);
	assert_false(cloexec(cfd));
	/* Both ends of the connection live in this process. */
	assert_int_equal(net_nodelay_all(), 2);
	assert_int_not_equal(nodelay(cfd), 0);
	assert_int_not_equal(nodelay(afd), 0);
	assert_true(cloexec(cfd));
	assert_true(cloexec(afd));
	/* The listener is not connected: left alone. */
	assert_int_equal(nodelay(lfd), 0);
	assert_false(cloexec(lfd));
	/* Only sockets without the option are counted. */
	assert_int_equal(net_nodelay_all(), 0);

	close(afd);
	close(cfd);
	close(lfd);
}

static void
test_ipv4(void **state)
{
	(void)state;
	connected_pair(0);
}

static void
test_ipv6(void **state)
{
	(void)state;
	connected_pair(1);
}

static void
test_others_left_alone(void **state)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int lfd, ufd, sp[2], on = 0;
	socklen_t len = sizeof(on);

	(void)state;
	lfd = listener(0, &ss, &sslen);
	assert_true(lfd >= 0);
	/* A connected UDP socket: it has a peer, but is not TCP. */
	ufd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(ufd >= 0);
	assert_int_equal(connect(ufd, (struct sockaddr *)&ss, sslen), 0);
	/* A connected UNIX stream pair. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);

	assert_int_equal(net_nodelay_all(), 0);
	assert_int_equal(nodelay(lfd), 0);
	assert_int_equal(getsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &on, &len),
	    -1);

	close(sp[0]);
	close(sp[1]);
	close(ufd);
	close(lfd);
}

static void
test_already_set(void **state)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int lfd, cfd, afd, on = 1;

	(void)state;
	lfd = listener(0, &ss, &sslen);
	assert_true(lfd >= 0);
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(cfd >= 0);
	assert_int_equal(
	    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)), 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&ss, sslen), 0);
	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);

	/* Only the accepted end lacked it; the other is not touched. */
	assert_int_equal(net_nodelay_all(), 1);
	assert_int_not_equal(nodelay(afd), 0);
	assert_true(cloexec(afd));
	assert_false(cloexec(cfd));

	close(afd);
	close(cfd);
	close(lfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ipv4),
	    cmocka_unit_test(test_ipv6),
	    cmocka_unit_test(test_others_left_alone),
	    cmocka_unit_test(test_already_set),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
