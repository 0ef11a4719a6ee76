/* Loading a client library when it is first needed (see dl.h). */
#include "ctrun/dl.h"

#include <dlfcn.h>
#include <stdio.h>

int ctrun_lib_load(const char *const *names, size_t nnames, const char *const *fns, void **slots,
                   size_t nfns, char *err, size_t errlen) {
  void *h = NULL;
  for (size_t i = 0; h == NULL && i < nnames; i++)
    h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    snprintf(err, errlen, "cannot load %s: %s", names[0], dlerror());
    return -1;
  }
  for (size_t i = 0; i < nfns; i++)
    if ((slots[i] = dlsym(h, fns[i])) == NULL) {
      snprintf(err, errlen, "%s lacks %s", names[0], fns[i]);
      return -1;
    }
  return 0;
}
