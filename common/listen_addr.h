/* listen_addr: the one parser of the listen addresses our servers take on
 * the command line (backfill-web's --listen, every binary's --metrics):
 *
 *   ADDR:PORT     an IPv4 address or a host name, then a port
 *   [V6]:PORT     an IPv6 address in brackets ([::1]:9464, [::]:9464)
 *   :PORT         every IPv4 address of this machine (0.0.0.0:PORT)
 *
 * PORT is 0..65535 (0: the kernel picks a free one). Names are resolved
 * once, with getaddrinfo; the first answer wins. */
#ifndef BACKFILL_LISTEN_ADDR_H
#define BACKFILL_LISTEN_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Parses spec into *out (and its length into *len when len is not NULL).
 * `what` names the setting in messages ("--listen"): errstr then reads
 * "--listen nonsense: expected ADDR:PORT", "--listen: port must be
 * 0..65535" and so on. *loopback is set to 1 when only this machine can
 * connect (127.0.0.0/8, ::1), else 0. Returns 0, or -1 with the reason in
 * errstr (*out, *len and *loopback then untouched). */
int listen_addr_parse(const char *what, const char *spec, struct sockaddr_storage *out,
                      socklen_t *len, int *loopback, char *errstr, size_t errlen);

#endif
