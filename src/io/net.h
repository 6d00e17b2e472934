/*
 * net: socket options that Paho MQTT C 1.3.12 does not expose.
 */
#ifndef MQLOCK_IO_NET_H
#define MQLOCK_IO_NET_H

/*
 * net_nodelay_all(): set TCP_NODELAY on every connected TCP socket of this
 * process that does not have it yet.  Without it each QoS 1 exchange waits
 * 40-88 ms on Nagle's algorithm against delayed ACKs.  Paho owns its sockets
 * and offers no hook, so this walks /proc/self/fd.  The sockets changed also
 * get FD_CLOEXEC: Paho opens them without it, and a child process (mqlock's
 * COMMAND) holding the broker connection open would keep the broker from
 * noticing our death and publishing our will.  Returns the number of
 * sockets changed, or -1 if the descriptors could not be listed.
 */
int net_nodelay_all(void);

#endif
