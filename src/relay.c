/* The output relay: pipes read on the loop, written to their sinks by
 * libuv's thread pool, so that a slow reader of ctrun's own stdout never
 * blocks the loop (a file, which never waits for a reader, is written on
 * the loop at once).  Reads land straight in the sink's queue (no copy); a
 * sink writes one batch at a time, in order; when a sink's queue grows
 * past HIGH, the pipes that feed it are no longer read (backpressure:
 * the command blocks in write, as it would on the slow reader itself)
 * until the queue is below LOW.  Writes that fail (a closed stdout) are
 * ignored: the output is read on and dropped, as the command's own write
 * would have failed. */
#include "ctrun/relay.h"

#include <stdlib.h>
#include <string.h>

#include "ctrun/fs.h"

#define CHUNK (64 * 1024)  /* one queue element */
#define MIN_ROOM 4096      /* less room left in the tail: a new chunk */
#define HIGH (1024 * 1024) /* queued bytes that stop reading */
#define LOW (256 * 1024)   /* ... and that start it again */
#define BATCH 64           /* chunks a write takes at most */
#define QUIET_MS 200       /* drain: pipes quiet that long are done */
#define DRAIN_MAX_MS 5000  /* drain: at most this long after the tree is gone */
#define TICK_MS 50         /* drain: how often to look */
#define RETRY_MS 10        /* a full non-blocking descriptor: try again after */

struct chunk {
  struct chunk *next;
  size_t len;
  char data[CHUNK];
};

struct sink {
  struct ctrun_relay *relay;
  int fd;
  struct chunk *head, *tail;
  size_t queued;         /* bytes in the queue */
  struct chunk *last;    /* the last chunk of the batch being written */
  size_t batch;          /* its bytes */
  bool writing, waiting; /* a write in flight; one to try again after RETRY_MS */
  bool dead;             /* writes failed: drop what comes */
  bool direct;           /* a file: written on the loop, where it cannot block for long */
  uv_fs_t req;
  uv_buf_t bufs[BATCH];
};

struct source {
  struct ctrun_relay *relay;
  uv_pipe_t pipe;
  struct sink *sink;
  int child_fd; /* the write end, until the command has it */
  bool open, reading;
};

struct ctrun_relay {
  uv_loop_t *loop;
  struct sink sinks[2];
  int nsinks;
  struct source src[2];
  uv_timer_t drain_timer, retry_timer;
  int timers; /* open timers: the relay is freed when the last one closes */
  uint64_t drain_start, last_read;
  bool held, draining, closing;
  ctrun_relay_cb cb;
  void *cb_data;
  void (*done)(void *data);
  void *done_data;
};

static char scratch[CHUNK]; /* where output for a dead sink is read, and dropped */

static void kick(struct sink *k);
static void on_retry(uv_timer_t *h);
static void settle(struct ctrun_relay *r);
static void start_reading(struct source *s);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct source *s = h->data;
  struct sink *k = s->sink;
  struct chunk *c = k->tail;
  (void)suggested;
  if (k->dead) {
    *buf = uv_buf_init(scratch, sizeof scratch);
    return;
  }
  /* Append to the tail, unless it is being written or nearly full. */
  if (c == NULL || (k->writing && c == k->last) || CHUNK - c->len < MIN_ROOM) {
    c = malloc(sizeof *c);
    if (c == NULL) {
      *buf = uv_buf_init(NULL, 0); /* UV_ENOBUFS: read again later */
      return;
    }
    c->next = NULL;
    c->len = 0;
    if (k->tail != NULL)
      k->tail->next = c;
    else
      k->head = c;
    k->tail = c;
  }
  *buf = uv_buf_init(c->data + c->len, (unsigned)(CHUNK - c->len));
}

/* Stop reading the pipes while a sink is backed up, start again once it
 * has caught up; and say so, for --idle-timeout. */
static void hold(struct ctrun_relay *r, bool held) {
  if (r->held == held)
    return;
  r->held = held;
  for (int i = 0; i < 2; i++) {
    struct source *s = &r->src[i];
    if (held && s->reading) {
      uv_read_stop((uv_stream_t *)&s->pipe);
      s->reading = false;
    } else if (!held) {
      start_reading(s);
    }
  }
  if (r->cb != NULL)
    r->cb(r->cb_data, held);
}

static void on_pipe_closed(uv_handle_t *h) {
  struct source *s = h->data;
  s->open = false;
  settle(s->relay);
}

static void close_source(struct source *s) {
  if (!s->open || uv_is_closing((uv_handle_t *)&s->pipe))
    return;
  s->reading = false;
  uv_close((uv_handle_t *)&s->pipe, on_pipe_closed);
}

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf) {
  struct source *s = h->data;
  struct ctrun_relay *r = s->relay;
  struct sink *k = s->sink;
  if (n > 0) {
    if (buf->base != scratch) {
      k->tail->len += (size_t)n;
      k->queued += (size_t)n;
    }
    r->last_read = uv_now(r->loop);
    if (r->cb != NULL)
      r->cb(r->cb_data, false);
    kick(k);
    if (k->queued > HIGH)
      hold(r, true);
  } else if (n < 0 && n != UV_ENOBUFS) {
    close_source(s); /* the end of the pipe (or an error that ends it all the same) */
  }
}

static void start_reading(struct source *s) {
  if (s->open && !s->reading && !s->relay->held && !uv_is_closing((uv_handle_t *)&s->pipe) &&
      uv_read_start((uv_stream_t *)&s->pipe, on_alloc, on_read) == 0)
    s->reading = true;
}

/* Drop the first N bytes of sink K's queue: they are written. */
static void consume(struct sink *k, size_t n) {
  k->queued -= n;
  while (n > 0 && k->head != NULL) {
    struct chunk *c = k->head;
    if (c->len > n) {
      memmove(c->data, c->data + n, c->len - n);
      c->len -= n;
      return;
    }
    n -= c->len;
    k->head = c->next;
    if (k->head == NULL)
      k->tail = NULL;
    free(c);
  }
}

static void drop_all(struct sink *k) {
  consume(k, k->queued);
  while (k->head != NULL) { /* empty chunks */
    struct chunk *c = k->head;
    k->head = c->next;
    free(c);
  }
  k->tail = NULL;
}

static size_t most_queued(const struct ctrun_relay *r) {
  size_t m = 0;
  for (int i = 0; i < r->nsinks; i++)
    if (r->sinks[i].queued > m)
      m = r->sinks[i].queued;
  return m;
}

static void on_written(uv_fs_t *req) {
  struct sink *k = req->data;
  struct ctrun_relay *r = k->relay;
  ssize_t result = req->result;
  uv_fs_req_cleanup(req);
  k->writing = false;
  k->last = NULL;
  if (result < 0 && result != UV_EAGAIN) {
    k->dead = true; /* a closed stdout, a full disk: the rest is dropped */
    drop_all(k);
  } else {
    size_t done = result > 0 ? (size_t)result : 0;
    consume(k, done);
    /* Short: a descriptor someone else made non-blocking is full. */
    if (done < k->batch) {
      k->waiting = true;
      if (!uv_is_active((uv_handle_t *)&r->retry_timer))
        uv_timer_start(&r->retry_timer, on_retry, RETRY_MS, 0);
    }
  }
  if (r->held && most_queued(r) < LOW)
    hold(r, false);
  kick(k);
  settle(r);
}

/* Write sink K's queue, one batch at a time, in order. */
static void kick(struct sink *k) {
  struct ctrun_relay *r = k->relay;
  unsigned n = 0;
  if (k->writing || k->waiting || k->dead || k->queued == 0)
    return;
  if (k->direct) {
    /* A file (the log, the capture file, /dev/null): written at once, as
     * the command would have; the thread pool's round trip would cost
     * more than the write. */
    for (struct chunk *c = k->head; c != NULL && !k->dead; c = c->next)
      if (c->len > 0 && ctrun_fd_write_all(k->fd, c->data, c->len) != 0)
        k->dead = true;
    drop_all(k);
    return;
  }
  k->batch = 0;
  for (struct chunk *c = k->head; c != NULL && n < BATCH; c = c->next) {
    k->bufs[n++] = uv_buf_init(c->data, (unsigned)c->len);
    k->batch += c->len;
    k->last = c;
  }
  k->req.data = k;
  if (uv_fs_write(r->loop, &k->req, k->fd, k->bufs, n, -1, on_written) == 0) {
    k->writing = true;
  } else {
    k->dead = true;
    drop_all(k);
  }
}

static void on_retry(uv_timer_t *h) {
  struct ctrun_relay *r = h->data;
  for (int i = 0; i < r->nsinks; i++) {
    r->sinks[i].waiting = false;
    kick(&r->sinks[i]);
  }
  settle(r);
}

static void on_drain_tick(uv_timer_t *h) {
  struct ctrun_relay *r = h->data;
  uint64_t now = uv_now(r->loop);
  uint64_t since = r->last_read > r->drain_start ? r->last_read : r->drain_start;
  /* A writer that escaped the tree may keep a pipe open: once the pipes
   * are quiet, or at the latest after DRAIN_MAX_MS, they are closed.
   * Never while reading is held back: what is in them would be lost. */
  if (!r->held && (now - since >= QUIET_MS || now - r->drain_start >= DRAIN_MAX_MS))
    for (int i = 0; i < 2; i++)
      close_source(&r->src[i]);
}

static void on_timer_closed(uv_handle_t *h) {
  struct ctrun_relay *r = h->data;
  if (--r->timers == 0)
    free(r);
}

/* Move on when something finished: the drain, once both pipes are
 * closed; the relay, once it is closing and every byte is out. */
static void settle(struct ctrun_relay *r) {
  bool busy = false;
  if (r->draining && !r->src[0].open && !r->src[1].open) {
    void (*done)(void *data) = r->done;
    r->draining = false;
    r->done = NULL;
    uv_timer_stop(&r->drain_timer);
    if (done != NULL) {
      done(r->done_data);
      return; /* DONE may have closed the relay, which settles it again */
    }
  }
  if (!r->closing || r->src[0].open || r->src[1].open || r->timers < 2 ||
      uv_is_closing((uv_handle_t *)&r->drain_timer))
    return;
  for (int i = 0; i < r->nsinks; i++)
    busy |= r->sinks[i].writing || r->sinks[i].waiting || r->sinks[i].queued > 0;
  if (busy)
    return;
  for (int i = 0; i < r->nsinks; i++)
    drop_all(&r->sinks[i]); /* empty chunks */
  uv_close((uv_handle_t *)&r->drain_timer, on_timer_closed);
  uv_close((uv_handle_t *)&r->retry_timer, on_timer_closed);
}

int ctrun_relay_new(uv_loop_t *loop, int out_fd, int err_fd, ctrun_relay_cb cb, void *data,
                    struct ctrun_relay **out) {
  struct ctrun_relay *r = calloc(1, sizeof *r);
  if (r == NULL)
    return UV_ENOMEM;
  r->loop = loop;
  r->cb = cb;
  r->cb_data = data;
  r->nsinks = out_fd == err_fd ? 1 : 2;
  r->sinks[0].fd = out_fd;
  r->sinks[1].fd = err_fd;
  r->sinks[0].direct = ctrun_fd_is_file(out_fd);
  r->sinks[1].direct = ctrun_fd_is_file(err_fd);
  for (int i = 0; i < 2; i++) {
    r->sinks[i].relay = r;
    r->src[i].relay = r;
    r->src[i].child_fd = -1;
    r->src[i].sink = &r->sinks[r->nsinks == 1 ? 0 : i];
  }
  uv_timer_init(loop, &r->drain_timer);
  uv_timer_init(loop, &r->retry_timer);
  r->drain_timer.data = r->retry_timer.data = r;
  r->timers = 2;
  *out = r;
  return 0;
}

int ctrun_relay_open(struct ctrun_relay *r, int *child_out, int *child_err) {
  for (int i = 0; i < 2; i++) {
    struct source *s = &r->src[i];
    uv_file fds[2];
    int e = uv_pipe(fds, UV_NONBLOCK_PIPE, 0);
    if (e != 0)
      return e;
    uv_pipe_init(r->loop, &s->pipe, 0);
    s->pipe.data = s;
    s->open = true;
    s->reading = false;
    s->child_fd = fds[1];
    e = uv_pipe_open(&s->pipe, fds[0]);
    if (e != 0) {
      ctrun_fd_close(fds[0]);
      close_source(s);
      return e;
    }
    start_reading(s);
  }
  *child_out = r->src[0].child_fd;
  *child_err = r->src[1].child_fd;
  return 0;
}

void ctrun_relay_spawned(struct ctrun_relay *r) {
  for (int i = 0; i < 2; i++) {
    if (r->src[i].child_fd >= 0)
      ctrun_fd_close(r->src[i].child_fd);
    r->src[i].child_fd = -1;
  }
}

void ctrun_relay_drain(struct ctrun_relay *r, void (*done)(void *data), void *data) {
  ctrun_relay_spawned(r);
  r->draining = true;
  r->done = done;
  r->done_data = data;
  r->drain_start = uv_now(r->loop);
  uv_timer_start(&r->drain_timer, on_drain_tick, TICK_MS, TICK_MS);
  settle(r);
}

void ctrun_relay_close(struct ctrun_relay *r) {
  if (r == NULL)
    return;
  r->closing = true;
  r->draining = false;
  r->done = NULL;
  ctrun_relay_spawned(r);
  for (int i = 0; i < 2; i++)
    close_source(&r->src[i]);
  settle(r);
}
