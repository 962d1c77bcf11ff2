/*
 * admin: the operators' listener (/livez, /readyz, /metrics), served by its
 * own libmicrohttpd thread on a separate address that is never routed
 * from the internet. Nothing here touches the workers' request path.
 */
#ifndef GLASGOW_ADMIN_H
#define GLASGOW_ADMIN_H

/* Starts serving on the already listening socket fd (takes ownership).
 * Returns 0, or -1 when libmicrohttpd refuses. */
int admin_start(int fd);

/* Stops the admin thread and closes its socket. */
void admin_stop(void);

#endif
