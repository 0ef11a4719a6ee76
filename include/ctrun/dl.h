/* Client libraries loaded when first needed, not linked: libcurl (--ping)
 * and libpq (PostgreSQL locks) each bring a score of libraries (TLS,
 * Kerberos, LDAP ...) that every run would load otherwise. */
#ifndef CTRUN_DL_H
#define CTRUN_DL_H

#include <stddef.h>

/* Load the first of NAMES that loads, and find FNS in it, into SLOTS.
 * 0, or -1 with ERR saying which library or function is missing. */
int ctrun_lib_load(const char *const *names, size_t nnames, const char *const *fns, void **slots,
                   size_t nfns, char *err, size_t errlen);

#endif
