/*
 * admin: the operators' listener (/livez, /readyz, /metrics), served by its
 * own libmicrohttpd thread on a separate address that is never routed
 * from the internet. Nothing here touches the workers' request path.
 * Probes always get through: idle connections time out after 2 s, and
 * past 16 connections a newcomer evicts the longest-idle one instead of
 * being refused (admin.c says why).
 */
#ifndef GLASGOW_ADMIN_H
#define GLASGOW_ADMIN_H

/* Starts serving on the already listening socket fd (takes ownership).
 * Returns 0, or -1 when libmicrohttpd refuses. */
int admin_start(int fd);

/* Stops the admin thread and closes its socket. */
void admin_stop(void);

#endif
