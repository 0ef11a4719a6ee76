/* The Unix part of --ping: one HTTP request through libcurl (when built
 * with it: CTRUN_HTTP_CURL), and the files a ping reads. */
#include "ctrun/ping.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#ifdef CTRUN_HTTP_CURL
#define CURL_DISABLE_TYPECHECK /* the calls go through pointers, below */
#include <curl/curl.h>
#include <dirent.h>
#include <pthread.h>

#include "ctrun/dl.h"
#include "ctrun/msg.h"

/* libcurl is loaded when a run first pings, not linked: linked, its thirty
 * libraries (TLS, HTTP/2, IDN, LDAP, SSH ...) were loaded by every run,
 * and tripled the cost of a run that pings nothing (2 ms to 7 ms). */
static struct {
  CURLcode (*global_init)(long);
  CURL *(*easy_init)(void);
  CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
  const char *(*easy_strerror)(CURLcode);
  void (*easy_cleanup)(CURL *);
  struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
  void (*slist_free_all)(struct curl_slist *);
  CURLM *(*multi_init)(void);
  CURLMcode (*multi_add_handle)(CURLM *, CURL *);
  CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
  CURLMcode (*multi_cleanup)(CURLM *);
  CURLMcode (*multi_perform)(CURLM *, int *);
  CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd *, unsigned, int, int *);
  CURLMsg *(*multi_info_read)(CURLM *, int *);
} lib;
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init lib.global_init
#define curl_easy_init lib.easy_init
#define curl_easy_setopt lib.easy_setopt
#define curl_easy_getinfo lib.easy_getinfo
#define curl_easy_strerror lib.easy_strerror
#define curl_easy_cleanup lib.easy_cleanup
#define curl_slist_append lib.slist_append
#define curl_slist_free_all lib.slist_free_all
#define curl_multi_init lib.multi_init
#define curl_multi_add_handle lib.multi_add_handle
#define curl_multi_remove_handle lib.multi_remove_handle
#define curl_multi_cleanup lib.multi_cleanup
#define curl_multi_perform lib.multi_perform
#define curl_multi_poll lib.multi_poll
#define curl_multi_info_read lib.multi_info_read

/* Load libcurl and find its functions; 0, or -1 having said why. */
static int load_curl(void) {
  static const char *const names[] = {
#ifdef __APPLE__
    "libcurl.4.dylib", "libcurl.dylib",
#else
    "libcurl.so.4", "libcurl-gnutls.so.4", "libcurl.so",
#endif
  };
  static const char *const fn[] = {
    "curl_global_init",      "curl_easy_init",        "curl_easy_setopt",
    "curl_easy_getinfo",     "curl_easy_strerror",    "curl_easy_cleanup",
    "curl_slist_append",     "curl_slist_free_all",   "curl_multi_init",
    "curl_multi_add_handle", "curl_multi_remove_handle", "curl_multi_cleanup",
    "curl_multi_perform",    "curl_multi_poll",       "curl_multi_info_read",
  };
  char err[512];
  _Static_assert(sizeof lib == sizeof fn / sizeof fn[0] * sizeof(void *), "one slot per function");
  if (ctrun_lib_load(names, sizeof names / sizeof names[0], fn, (void **)&lib,
                     sizeof fn / sizeof fn[0], err, sizeof err) != 0) {
    ctrun_error("--ping: %s (libcurl 7.66 or later is needed)", err);
    return -1;
  }
  return 0;
}
#endif

int ctrun_ping_os_open(const char *path) {
  struct stat st;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return UV_EINVAL;
  }
  return fd;
}

int ctrun_ping_os_read_small(const char *path, char *buf, size_t size) {
  struct stat st;
  size_t got = 0;
  /* Not blocking on a FIFO's open; a pipe (--ping-file <(...)) is read
   * to its end like a file. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), e = 0;
  if (fd < 0)
    return -errno;
  if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode) || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))) {
    e = S_ISDIR(st.st_mode) ? UV_EISDIR : UV_EINVAL;
    close(fd);
    return e;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  while (got + 1 < size) {
    ssize_t n = read(fd, buf + got, size - 1 - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      e = -errno;
      break;
    }
    if (n == 0 || memchr(buf + got, '\n', (size_t)n) != NULL) {
      got += (size_t)n;
      break;
    }
    got += (size_t)n;
  }
  close(fd);
  buf[got] = '\0';
  return e;
}

int ctrun_ping_os_tail(int fd, char *buf, size_t max, size_t *len) {
  struct stat st;
  off_t from;
  size_t got = 0;
  *len = 0;
  if (fstat(fd, &st) != 0)
    return -errno;
  if (!S_ISREG(st.st_mode))
    return UV_EINVAL;
  from = st.st_size > (off_t)max ? st.st_size - (off_t)max : 0;
  while (got < max) {
    ssize_t n = pread(fd, buf + got, max - got, from + (off_t)got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    if (n == 0)
      break;
    got += (size_t)n;
  }
  *len = got;
  return 0;
}

#ifdef CTRUN_HTTP_CURL

bool ctrun_http_available(void) { return true; }

/* No descriptor of curl's may reach a command: the start ping's thread can
 * be at work when --retry forks the next attempt.  Its socket is opened
 * close-on-exec (open_socket), but curl also makes socket pairs of its own
 * (to wake its loop, to hear from its resolver thread) without that flag.
 * So every call into curl that may open one holds FD_LOCK, and marks what
 * it opened close-on-exec before letting go; and a fork waits for it
 * (pthread_atfork).  Which descriptors are curl's: those without the flag
 * that ctrun did not inherit without it (ctrun opens all of its own with
 * it), noted once before curl is set up. */
static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;
#define NOTED_MAX 65536
static unsigned char inherited[NOTED_MAX / 8];

static void fork_prepare(void) { pthread_mutex_lock(&fd_lock); }
static void fork_parent(void) { pthread_mutex_unlock(&fd_lock); }
/* The child execs (or exits) without touching the lock. */
static void fork_child(void) {}

/* Call FN for every descriptor above 2 that is open. */
static void each_fd(void (*fn)(int fd, int flags)) {
#ifdef __linux__
  DIR *d = opendir("/proc/self/fd");
  if (d != NULL) {
    struct dirent *de;
    int self = dirfd(d);
    while ((de = readdir(d)) != NULL) {
      int fd = atoi(de->d_name), flags;
      if (fd > 2 && fd != self && (flags = fcntl(fd, F_GETFD)) >= 0)
        fn(fd, flags);
    }
    closedir(d);
    return;
  }
#endif
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 4096)
    max = 4096;
  for (int fd = 3; fd < max; fd++) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0)
      fn(fd, flags);
  }
}

static void note_inherited(int fd, int flags) {
  if (!(flags & FD_CLOEXEC) && fd < NOTED_MAX)
    inherited[fd / 8] |= (unsigned char)(1u << (fd % 8));
}

static void close_on_exec(int fd, int flags) {
  if (!(flags & FD_CLOEXEC) && !(fd < NOTED_MAX && (inherited[fd / 8] & (1u << (fd % 8)))))
    fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

int ctrun_http_init(void) {
  static int done; /* only the loop's thread calls this */
  if (done == 0) {
    each_fd(note_inherited);
    done = load_curl() == 0 && pthread_atfork(fork_prepare, fork_parent, fork_child) == 0 &&
                   curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK
               ? 1
               : -1;
    each_fd(close_on_exec);
  }
  return done > 0 ? 0 : -1;
}

/* The transfer of H, through a multi handle of its own: unlike
 * curl_easy_perform, each step that may open a descriptor is a call of
 * ours, made under FD_LOCK. */
static CURLcode perform(CURL *h) {
  CURLcode c = CURLE_FAILED_INIT;
  CURLM *m;
  int running = 1;

  pthread_mutex_lock(&fd_lock);
  m = curl_multi_init();
  if (m != NULL && curl_multi_add_handle(m, h) != CURLM_OK) {
    curl_multi_cleanup(m);
    m = NULL;
  }
  each_fd(close_on_exec);
  pthread_mutex_unlock(&fd_lock);
  if (m == NULL)
    return CURLE_OUT_OF_MEMORY;
  for (;;) {
    CURLMcode mc;
    pthread_mutex_lock(&fd_lock);
    mc = curl_multi_perform(m, &running);
    each_fd(close_on_exec);
    pthread_mutex_unlock(&fd_lock);
    if (mc != CURLM_OK || running == 0)
      break;
    if (curl_multi_poll(m, NULL, 0, 1000, NULL) != CURLM_OK)
      break;
  }
  for (;;) {
    int left;
    CURLMsg *msg = curl_multi_info_read(m, &left);
    if (msg == NULL)
      break;
    if (msg->msg == CURLMSG_DONE && msg->easy_handle == h)
      c = msg->data.result;
  }
  curl_multi_remove_handle(m, h);
  curl_multi_cleanup(m);
  return c;
}

static size_t discard(char *data, size_t size, size_t n, void *arg) {
  (void)data;
  (void)arg;
  return size * n;
}

/* A socket that the command of a later attempt (--retry) does not
 * inherit. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a) {
  int fd;
  (void)arg;
  (void)purpose;
#ifdef SOCK_CLOEXEC
  fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
#else
  fd = socket(a->family, a->socktype, a->protocol);
  if (fd >= 0)
    fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
  return fd >= 0 ? fd : CURL_SOCKET_BAD;
}

/* WHY, unless it quotes the URL past its host: then curl's generic text. */
static void say_why(char *why, size_t whylen, const char *url, const char *detail, CURLcode c) {
  const char *rest = strstr(url, "://");
  rest = rest != NULL ? rest + 3 + strcspn(rest + 3, "/?") : url;
  if (detail[0] == '\0' || (rest[0] != '\0' && rest[1] != '\0' && strstr(detail, rest + 1) != NULL))
    detail = curl_easy_strerror(c);
  snprintf(why, whylen, "%s", detail);
}

enum ctrun_http_result ctrun_http_send(const char *url, const char *body, size_t len,
                                       uint64_t timeout_ms, char *why, size_t whylen) {
  char err[CURL_ERROR_SIZE] = "";
  struct curl_slist *headers = NULL;
  enum ctrun_http_result r;
  const char *ca = getenv("CURL_CA_BUNDLE");
  long status = 0;
  CURLcode c;
  CURL *h = curl_easy_init();

  if (h == NULL) {
    snprintf(why, whylen, "cannot set up the HTTP client");
    return CTRUN_HTTP_FAIL;
  }
  curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "ctrun/" CTRUN_VERSION);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  /* As the curl tool does: a CA bundle of one's own (a private CA). */
  if (ca != NULL && ca[0] != '\0')
    curl_easy_setopt(h, CURLOPT_CAINFO, ca);
  if (body != NULL) {
    headers = curl_slist_append(headers, "Content-Type: text/plain; charset=utf-8");
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
  }
  c = perform(h);
  if (c == CURLE_OK) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
      r = CTRUN_HTTP_OK;
    } else {
      snprintf(why, whylen, "HTTP %ld", status);
      r = status == 408 || status == 429 || status >= 500 ? CTRUN_HTTP_RETRY : CTRUN_HTTP_FAIL;
    }
  } else {
    if (c == CURLE_OPERATION_TIMEDOUT)
      snprintf(why, whylen, "no answer within %llus", (unsigned long long)(timeout_ms / 1000));
    else
      say_why(why, whylen, url, err, c);
    /* A certificate refused, or a URL curl cannot use, stays so. */
    r = c == CURLE_PEER_FAILED_VERIFICATION || c == CURLE_SSL_CACERT_BADFILE ||
                c == CURLE_URL_MALFORMAT || c == CURLE_UNSUPPORTED_PROTOCOL
            ? CTRUN_HTTP_FAIL
            : CTRUN_HTTP_RETRY;
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  return r;
}

#endif
