/* The output relay of --idle-timeout: the command writes into pipes that
 * ctrun reads on the loop, and ctrun writes what it reads to where the
 * output would have gone.  It sees every byte, so it can tell a silent
 * command from a busy one. */
#ifndef CTRUN_RELAY_H
#define CTRUN_RELAY_H

#include <stdbool.h>
#include <uv.h>

struct ctrun_relay;

/* Told of every read (HELD false), and when the relay starts (HELD true)
 * or stops holding the command back for a slow reader downstream. */
typedef void (*ctrun_relay_cb)(void *data, bool held);

/* A relay on LOOP to OUT_FD (the command's stdout) and ERR_FD (its
 * stderr); one descriptor for both when they go to one place (the log,
 * the capture file), and then one queue keeps their order of arrival.
 * The descriptors stay ctrun's: the relay never closes them. */
int ctrun_relay_new(uv_loop_t *loop, int out_fd, int err_fd, ctrun_relay_cb cb, void *data,
                    struct ctrun_relay **out);

/* Pipes for the next command: *CHILD_OUT and *CHILD_ERR are the write
 * ends to give it as its stdout and stderr; ctrun_relay_spawned closes
 * ctrun's copies once it has them. */
int ctrun_relay_open(struct ctrun_relay *r, int *child_out, int *child_err);
void ctrun_relay_spawned(struct ctrun_relay *r);

/* The tree is gone: read what is left in the pipes, and call DONE(DATA)
 * once both are at their end, or have been quiet for a moment (a writer
 * that escaped the tree must not hold the run open).  Nothing read is
 * lost: what is queued is written out before the relay closes. */
void ctrun_relay_drain(struct ctrun_relay *r, void (*done)(void *data), void *data);

/* Close it: queued output is written first, then the relay frees itself
 * (the loop runs until then). */
void ctrun_relay_close(struct ctrun_relay *r);

#endif
