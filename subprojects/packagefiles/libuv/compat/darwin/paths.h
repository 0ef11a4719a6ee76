/* <paths.h> for macOS toolchains that ship only part of the SDK's headers
 * (Zig 0.11's `zig cc` has no <paths.h>).  libuv's process.c needs one
 * value from it: the search path when the environment has no PATH, which
 * is the value of Apple's own <paths.h>.  Used only when the compiler
 * finds no <paths.h> of its own. */
#ifndef CTRUN_COMPAT_PATHS_H
#define CTRUN_COMPAT_PATHS_H
#define _PATH_DEFPATH "/usr/bin:/bin"
#define _PATH_BSHELL "/bin/sh"
#define _PATH_DEVNULL "/dev/null"
#endif
