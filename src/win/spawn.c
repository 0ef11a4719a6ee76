/* Starting a command as a Windows user expects: cmd.exe's search for the
 * program (PATH, PATHEXT, ".exe" implied), and a command line quoted so that
 * the child's CommandLineToArgvW gives back exactly the argv ctrun was given.
 * ctrun speaks UTF-8; everything here crosses into UTF-16. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <wchar.h>

wchar_t *ctrun_win_wide(const char *s) {
  int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
  wchar_t *w;
  if (n <= 0 || (w = malloc((size_t)n * sizeof *w)) == NULL)
    return NULL;
  MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n);
  return w;
}

char *ctrun_win_utf8(const wchar_t *w) {
  int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
  char *s;
  if (n <= 0 || (s = malloc((size_t)n)) == NULL)
    return NULL;
  WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL);
  return s;
}

int ctrun_win_error(DWORD err) {
  int r = uv_translate_sys_error((int)err);
  return r < 0 ? r : UV_EIO;
}

/* A growable UTF-16 string. */
struct wbuf {
  wchar_t *s;
  size_t len, cap;
  bool failed;
};

static void wput(struct wbuf *b, const wchar_t *s, size_t n) {
  if (b->failed)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    wchar_t *bigger;
    while (cap < b->len + n + 1)
      cap *= 2;
    bigger = realloc(b->s, cap * sizeof *bigger);
    if (bigger == NULL) {
      b->failed = true;
      return;
    }
    b->s = bigger;
    b->cap = cap;
  }
  wmemcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = L'\0';
}

static void wputc(struct wbuf *b, wchar_t c, size_t times) {
  while (times-- > 0)
    wput(b, &c, 1);
}

static wchar_t *wdone(struct wbuf *b) {
  if (b->failed || b->s == NULL) {
    free(b->s);
    return NULL;
  }
  return b->s;
}

/* One argument after the first, as the CRT and CommandLineToArgvW read it
 * back: inside quotes, backslashes are literal unless a quote follows, so
 * those before a quote (and before the closing one) are doubled. */
static void quote_arg(struct wbuf *b, const wchar_t *a) {
  if (a[0] != L'\0' && wcspbrk(a, L" \t\n\v\"") == NULL) {
    wput(b, a, wcslen(a));
    return;
  }
  wputc(b, L'"', 1);
  for (const wchar_t *p = a;; p++) {
    size_t slashes = 0;
    while (*p == L'\\') {
      slashes++;
      p++;
    }
    if (*p == L'\0') {
      wputc(b, L'\\', slashes * 2);
      break;
    }
    if (*p == L'"') {
      wputc(b, L'\\', slashes * 2 + 1);
      wputc(b, L'"', 1);
    } else {
      wputc(b, L'\\', slashes);
      wputc(b, *p, 1);
    }
  }
  wputc(b, L'"', 1);
}

/* The program name is read back without escapes, up to the next quote or
 * blank: quote it whole when it has a blank (it cannot hold a quote). */
static void quote_program(struct wbuf *b, const wchar_t *a) {
  bool q = a[0] == L'\0' || wcspbrk(a, L" \t") != NULL;
  if (q)
    wputc(b, L'"', 1);
  wput(b, a, wcslen(a));
  if (q)
    wputc(b, L'"', 1);
}

wchar_t *ctrun_win_quote_argv(char *const *argv) {
  struct wbuf b = { 0 };
  for (size_t i = 0; argv[i] != NULL; i++) {
    wchar_t *w = ctrun_win_wide(argv[i]);
    if (w == NULL) {
      free(b.s);
      return NULL;
    }
    if (i > 0)
      wputc(&b, L' ', 1);
    if (i == 0)
      quote_program(&b, w);
    else
      quote_arg(&b, w);
    free(w);
  }
  return wdone(&b);
}

static bool is_file(const wchar_t *path) {
  DWORD a = GetFileAttributesW(path);
  return a != INVALID_FILE_ATTRIBUTES && !(a & FILE_ATTRIBUTE_DIRECTORY);
}

/* An environment variable of ctrun's, as a new string ("" when unset). */
static wchar_t *env_var(const wchar_t *name) {
  DWORD n = GetEnvironmentVariableW(name, NULL, 0);
  wchar_t *v = malloc(((size_t)n + 1) * sizeof *v);
  if (v == NULL)
    return NULL;
  if (n == 0 || GetEnvironmentVariableW(name, v, n + 1) >= n + 1)
    v[0] = L'\0';
  return v;
}

/* Try DIR\NAME, then DIR\NAME with each extension of EXTS (a PATHEXT list);
 * the bare name first only when it has an extension of its own. */
static wchar_t *try_dir(const wchar_t *dir, size_t dirlen, const wchar_t *name, const wchar_t *exts,
                        bool has_ext) {
  size_t nlen = wcslen(name), cap = dirlen + nlen + wcslen(exts) + 8;
  wchar_t *p = malloc(cap * sizeof *p);
  size_t base;

  if (p == NULL)
    return NULL;
  wmemcpy(p, dir, dirlen);
  base = dirlen;
  if (base > 0 && p[base - 1] != L'\\' && p[base - 1] != L'/' && p[base - 1] != L':')
    p[base++] = L'\\';
  wmemcpy(p + base, name, nlen + 1);
  if (has_ext && is_file(p))
    return p;
  for (const wchar_t *e = exts; *e;) {
    const wchar_t *end = wcschr(e, L';');
    size_t elen = end ? (size_t)(end - e) : wcslen(e);
    if (elen > 0 && e[0] == L'.') {
      wmemcpy(p + base + nlen, e, elen);
      p[base + nlen + elen] = L'\0';
      if (is_file(p))
        return p;
    }
    e += elen;
    if (*e == L';')
      e++;
  }
  free(p);
  return NULL;
}

wchar_t *ctrun_win_path_next(const wchar_t **p) {
  const wchar_t *s = *p;
  bool quoted = false;
  size_t n = 0;
  wchar_t *dir;

  if (s == NULL || *s == L'\0' || (dir = malloc((wcslen(s) + 1) * sizeof *dir)) == NULL) {
    *p = NULL;
    return NULL;
  }
  for (; *s != L'\0' && (quoted || *s != L';'); s++) {
    if (*s == L'"')
      quoted = !quoted;
    else
      dir[n++] = *s;
  }
  dir[n] = L'\0';
  *p = *s == L';' ? s + 1 : s;
  return dir;
}

int ctrun_win_search(const char *utf8name, wchar_t **out) {
  wchar_t *name = ctrun_win_wide(utf8name), *pathext = NULL, *path = NULL, *found = NULL;
  wchar_t exts[512];
  const wchar_t *last;
  bool has_dir, has_ext;

  *out = NULL;
  if (name == NULL || name[0] == L'\0') {
    free(name);
    return UV_ENOENT;
  }
  pathext = env_var(L"PATHEXT");
  path = env_var(L"PATH");
  if (pathext == NULL || path == NULL)
    goto out;
  /* PATHEXT, with ".EXE" added when a strange environment lacks it. */
  _snwprintf(exts, sizeof exts / sizeof exts[0] - 1, L"%ls;.EXE",
             pathext[0] ? pathext : L".COM;.EXE;.BAT;.CMD");
  exts[sizeof exts / sizeof exts[0] - 1] = L'\0';
  has_dir = wcspbrk(name, L"\\/") != NULL || (name[0] != L'\0' && name[1] == L':');
  last = name + wcslen(name);
  while (last > name && last[-1] != L'\\' && last[-1] != L'/' && last[-1] != L':')
    last--;
  has_ext = wcschr(last, L'.') != NULL;
  if (has_dir) {
    found = try_dir(L"", 0, name, exts, has_ext);
    goto out;
  }
  if (NeedCurrentDirectoryForExePathW(name) && (found = try_dir(L".", 1, name, exts, has_ext)))
    goto out;
  for (const wchar_t *d = path; found == NULL;) {
    wchar_t *dir = ctrun_win_path_next(&d);
    if (dir == NULL)
      break;
    if (dir[0] != L'\0')
      found = try_dir(dir, wcslen(dir), name, exts, has_ext);
    free(dir);
  }
out:
  free(name);
  free(pathext);
  free(path);
  if (found == NULL)
    return UV_ENOENT;
  /* A path relative to the current directory stays one: the child starts
   * there too. */
  *out = found;
  return 0;
}

/* PATH as Windows resolves it before it opens it, a new string: the full
 * path, with the trailing dots and spaces of its last component dropped
 * (GetFullPathNameW, as CreateProcess does it); a \\?\ path as it is,
 * since that is the one form Windows takes verbatim. */
static wchar_t *normalized(const wchar_t *path) {
  DWORD n;
  wchar_t *full;
  if (wcsncmp(path, L"\\\\?\\", 4) == 0)
    return _wcsdup(path);
  n = GetFullPathNameW(path, 0, NULL, NULL);
  if (n == 0 || (full = malloc((size_t)n * sizeof *full)) == NULL)
    return NULL;
  if (GetFullPathNameW(path, n, full, NULL) >= n) {
    free(full);
    return NULL;
  }
  return full;
}

bool ctrun_win_is_batch(const wchar_t *path) {
  wchar_t *full = normalized(path);
  const wchar_t *base, *dot;
  bool batch;

  if (full == NULL)
    return true; /* cannot tell: the careful answer */
  base = full + wcslen(full);
  while (base > full && base[-1] != L'\\' && base[-1] != L'/')
    base--;
  dot = wcsrchr(base, L'.');
  batch = dot != NULL && (_wcsnicmp(dot, L".bat", 4) == 0 || _wcsnicmp(dot, L".cmd", 4) == 0);
  free(full);
  return batch;
}

/* cmd.exe /c "script" args: cmd expands %VAR% and reads quotes inside its
 * line whatever the quoting, so an argument with one of those characters
 * cannot reach a batch file intact; refuse it rather than run something
 * else. */
static int batch_command(const wchar_t *path, char *const *argv, wchar_t **app,
                         wchar_t **cmdline) {
  struct wbuf b = { 0 };
  wchar_t *comspec, *script = normalized(path);

  /* The script's own path goes through cmd too: a %VAR% in it would be
   * expanded into another path. */
  if (script == NULL || wcschr(script, L'%') != NULL) {
    free(script);
    return UV_EINVAL;
  }
  comspec = env_var(L"ComSpec");
  if (comspec == NULL) {
    free(script);
    return UV_ENOMEM;
  }
  if (comspec[0] == L'\0') {
    free(comspec);
    comspec = _wcsdup(L"C:\\Windows\\System32\\cmd.exe");
    if (comspec == NULL) {
      free(script);
      return UV_ENOMEM;
    }
  }
  static const wchar_t head[] = L"cmd.exe /d /e:on /v:off /s /c \"\"";
  wput(&b, head, wcslen(head));
  wput(&b, script, wcslen(script));
  wputc(&b, L'"', 1);
  for (size_t i = 1; argv[i] != NULL; i++) {
    wchar_t *w = ctrun_win_wide(argv[i]);
    if (w == NULL || wcspbrk(w, L"\"%\r\n") != NULL) {
      free(w);
      free(b.s);
      free(comspec);
      free(script);
      return UV_EINVAL;
    }
    wput(&b, L" \"", 2);
    wput(&b, w, wcslen(w));
    wputc(&b, L'"', 1);
    free(w);
  }
  wputc(&b, L'"', 1);
  free(script);
  *cmdline = wdone(&b);
  if (*cmdline == NULL) {
    free(comspec);
    return UV_ENOMEM;
  }
  *app = comspec;
  return 0;
}

int ctrun_win_command(char *const *argv, wchar_t **app, wchar_t **cmdline) {
  wchar_t *path;
  int r;

  *app = *cmdline = NULL;
  r = ctrun_win_search(argv[0], &path);
  if (r != 0)
    return r;
  if (ctrun_win_is_batch(path)) {
    r = batch_command(path, argv, app, cmdline);
    free(path);
    return r;
  }
  *cmdline = ctrun_win_quote_argv(argv);
  if (*cmdline == NULL) {
    free(path);
    return UV_EINVAL;
  }
  *app = path;
  return 0;
}

/* One entry of an environment block being built. */
struct env_entry {
  wchar_t *s;
  size_t name_len, order;
};

/* The length of the name of entry S: up to its first '=' after the first
 * character ("=C:=C:\dir", the current directory of drive C:, is named
 * "=C:"). */
static size_t env_name_len(const wchar_t *s) {
  const wchar_t *eq = s[0] != L'\0' ? wcschr(s + 1, L'=') : NULL;
  return eq != NULL ? (size_t)(eq - s) : wcslen(s);
}

/* Names compare as Windows compares them: ordinal, without case. */
static int env_name_cmp(const struct env_entry *a, const struct env_entry *b) {
  int c = CompareStringOrdinal(a->s, (int)a->name_len, b->s, (int)b->name_len, TRUE);
  return c == CSTR_LESS_THAN ? -1 : c == CSTR_GREATER_THAN ? 1 : 0;
}

static int by_name_then_order(const void *x, const void *y) {
  const struct env_entry *a = x, *b = y;
  int c = env_name_cmp(a, b);
  return c != 0 ? c : a->order < b->order ? -1 : a->order > b->order;
}

wchar_t *ctrun_win_env_block(char *const *env) {
  struct env_entry *v;
  size_t n = 0, k = 0, total = 2, at = 0; /* an empty block is two NULs */
  wchar_t *block;

  while (env[n] != NULL)
    n++;
  v = calloc(n + 1, sizeof *v);
  if (v == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    wchar_t *w = ctrun_win_wide(env[i]);
    if (w == NULL)
      continue; /* not UTF-8: it has no UTF-16 form to pass on */
    v[k].s = w;
    v[k].name_len = env_name_len(w);
    v[k].order = i;
    k++;
  }
  qsort(v, k, sizeof *v, by_name_then_order);
  /* Of the entries that Windows takes for one variable, the first given:
   * ctrun puts its own first (the run tag leads the environment). */
  for (size_t i = 0, kept = 0; i < k; i++) {
    if (i > 0 && env_name_cmp(&v[kept], &v[i]) == 0) {
      free(v[i].s);
      v[i].s = NULL;
    } else {
      total += wcslen(v[i].s) + 1;
      kept = i;
    }
  }
  block = malloc(total * sizeof *block);
  for (size_t i = 0; i < k; i++) {
    if (block != NULL && v[i].s != NULL) {
      size_t len = wcslen(v[i].s) + 1;
      wmemcpy(block + at, v[i].s, len);
      at += len;
    }
    free(v[i].s);
  }
  free(v);
  if (block != NULL)
    block[at] = block[at + 1] = L'\0';
  return block;
}

DWORD ctrun_win_create_process(const wchar_t *app, wchar_t *cmdline, DWORD flags, void *env,
                               HANDLE stdio[3], HANDLE *inherit, size_t n,
                               PROCESS_INFORMATION *pi) {
  STARTUPINFOEXW si;
  SIZE_T size = 0;
  DWORD err = 0;
  BOOL ok;

  memset(&si, 0, sizeof si);
  si.StartupInfo.cb = sizeof si;
  si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
  si.StartupInfo.hStdInput = stdio[0];
  si.StartupInfo.hStdOutput = stdio[1];
  si.StartupInfo.hStdError = stdio[2];
  /* Only the listed handles pass to the child: a handle ctrun opened
   * meanwhile (a lock, a registry entry) must never be inherited. */
  if (n > 0) {
    InitializeProcThreadAttributeList(NULL, 1, 0, &size);
    si.lpAttributeList = malloc(size);
    if (si.lpAttributeList == NULL)
      return ERROR_NOT_ENOUGH_MEMORY;
    if (!InitializeProcThreadAttributeList(si.lpAttributeList, 1, 0, &size) ||
        !UpdateProcThreadAttribute(si.lpAttributeList, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
                                   inherit, n * sizeof *inherit, NULL, NULL)) {
      err = GetLastError();
      free(si.lpAttributeList);
      return err;
    }
    flags |= EXTENDED_STARTUPINFO_PRESENT;
  }
  /* Wine fails a start now and then on a loaded host (ERROR_INTERNAL_ERROR:
   * the new process could not reserve an address it needs, and ran
   * nothing), so it is tried again; Windows does not fail so. */
  for (int tries = 1;; tries++) {
    ok = CreateProcessW(app, cmdline, NULL, NULL, n > 0, flags, env, NULL, &si.StartupInfo, pi);
    if (ok || (err = GetLastError()) != ERROR_INTERNAL_ERROR || tries == 3)
      break;
    Sleep(50);
  }
  if (si.lpAttributeList != NULL) {
    DeleteProcThreadAttributeList(si.lpAttributeList);
    free(si.lpAttributeList);
  }
  return ok ? 0 : (err ? err : ERROR_GEN_FAILURE);
}
