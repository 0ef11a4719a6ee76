/* net.c for ctrun's Windows build of hiredis (see meson.build here).
 *
 * hiredis's own connections are POSIX sockets and are not built on
 * Windows.  hiredis.c calls these from redisConnect*, redisSetTimeout and
 * redisEnableKeepAlive: each fails and says why in the context, as a
 * connect that cannot be made does.  ctrun connects with libuv and calls
 * none of them. */
#include "hiredis.h"
#include "net.h"

void __redisSetError(redisContext *c, int type, const char *str);

static int not_built(redisContext *c) {
    __redisSetError(c, REDIS_ERR_OTHER,
                    "hiredis connections are not built on Windows");
    return REDIS_ERR;
}

int redisCheckSocketError(redisContext *c) {
    return not_built(c);
}

int redisContextSetTimeout(redisContext *c, const struct timeval tv) {
    (void)tv;
    return not_built(c);
}

int redisContextConnectTcp(redisContext *c, const char *addr, int port,
                           const struct timeval *timeout) {
    (void)addr; (void)port; (void)timeout;
    return not_built(c);
}

int redisContextConnectBindTcp(redisContext *c, const char *addr, int port,
                               const struct timeval *timeout,
                               const char *source_addr) {
    (void)addr; (void)port; (void)timeout; (void)source_addr;
    return not_built(c);
}

int redisContextConnectUnix(redisContext *c, const char *path,
                            const struct timeval *timeout) {
    (void)path; (void)timeout;
    return not_built(c);
}

int redisKeepAlive(redisContext *c, int interval) {
    (void)interval;
    return not_built(c);
}
