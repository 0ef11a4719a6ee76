/* Windows file-system operations: a verified state directory held open so
 * it cannot be swapped, files opened without following reparse points and
 * never inheritable, MoveFileExW replacement, and LockFileEx locks.
 *
 * LockFileEx locks are mandatory for the bytes they cover, so ctrun locks
 * one byte far beyond any text (LOCK_AT): a holder's text stays readable.
 * Files are opened for overlapped I/O so that a lock wait can be bounded;
 * every read and write here says its offset, and the descriptors handed to
 * the core are CRT descriptors (_open_osfhandle) it only closes. */
#include "ctrun/fs.h"

#include <aclapi.h>
#include <fcntl.h>
#include <io.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <wchar.h>

#include "ctrun/duration.h"
#include "ctrun/msg.h"
#include "internal.h"

#define LOCK_AT (1ULL << 62)

/* FileRenameInfoEx (Windows 10 1607), which headers for older targets
 * leave out of the enum. */
#define RENAME_INFO_EX ((FILE_INFO_BY_HANDLE_CLASS)22)
#define SHARE_ALL (FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)

/* How long one wait for a pending lock lasts before ctrun also tries to
 * take it outright (Wine never completes a pending lock request). */
#define LOCK_SLICE_MS 20

struct ctrun_dir {
  HANDLE h;       /* held without FILE_SHARE_DELETE: it cannot be moved */
  wchar_t *wpath;
  char path[];
};

static HANDLE os_handle(int fd) { return (HANDLE)_get_osfhandle(fd); }

/* Create PATH and any missing parents. */
static int make_dirs(wchar_t *path) {
  size_t len = wcslen(path);
  DWORD a = GetFileAttributesW(path);
  if (a != INVALID_FILE_ATTRIBUTES)
    return 0;
  while (len > 0 && path[len - 1] != L'\\')
    len--;
  if (len > 1 && path[len - 2] != L':' && path[len - 2] != L'\\') {
    int r;
    path[len - 1] = L'\0';
    r = make_dirs(path);
    path[len - 1] = L'\\';
    if (r != 0)
      return r;
  }
  if (!CreateDirectoryW(path, NULL) && GetLastError() != ERROR_ALREADY_EXISTS)
    return ctrun_win_error(GetLastError());
  return 0;
}

static wchar_t *wide_path(const char *path) {
  wchar_t *w = ctrun_win_wide(path);
  for (wchar_t *p = w; p != NULL && *p; p++)
    if (*p == L'/')
      *p = L'\\';
  return w;
}

/* Whether H is owned by this process's user, or by the owner it gives new
 * objects (the Administrators group, when elevated): the Windows form of
 * "a state directory owned by another user is refused". */
static int owned_by_us(HANDLE h, bool *ours) {
  union {
    TOKEN_USER user;
    TOKEN_OWNER owner;
    char buf[512];
  } info;
  PSID owner = NULL;
  PSECURITY_DESCRIPTOR sd = NULL;
  HANDLE token;
  DWORD n, r;

  *ours = false;
  r = GetSecurityInfo(h, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION, &owner, NULL, NULL, NULL, &sd);
  if (r != ERROR_SUCCESS)
    return ctrun_win_error(r);
  if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
    if (GetTokenInformation(token, TokenUser, &info, sizeof info, &n) &&
        EqualSid(owner, info.user.User.Sid))
      *ours = true;
    else if (GetTokenInformation(token, TokenOwner, &info, sizeof info, &n) &&
             EqualSid(owner, info.owner.Owner))
      *ours = true;
    CloseHandle(token);
  }
  LocalFree(sd);
  return 0;
}

int ctrun_dir_open(const char *path, bool create, struct ctrun_dir **out, char *err,
                   size_t errlen) {
  bool ours;
  BY_HANDLE_FILE_INFORMATION info;
  struct ctrun_dir *d;
  wchar_t *w = wide_path(path);
  HANDLE h;
  int r;

  if (w == NULL) {
    snprintf(err, errlen, "state directory '%s' is not a valid path", path);
    return UV_EINVAL;
  }
  while (wcslen(w) > 3 && w[wcslen(w) - 1] == L'\\')
    w[wcslen(w) - 1] = L'\0';
  if (create && (r = make_dirs(w)) != 0) {
    snprintf(err, errlen, "cannot create state directory '%s': %s", path, ctrun_strerror(r));
    free(w);
    return r;
  }
  /* The link itself, not its target, is what is opened and checked. */
  h = CreateFileW(w, FILE_READ_ATTRIBUTES | FILE_LIST_DIRECTORY | READ_CONTROL,
                  FILE_SHARE_READ | FILE_SHARE_WRITE,
                  NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT,
                  NULL);
  if (h == INVALID_HANDLE_VALUE) {
    r = ctrun_win_error(GetLastError());
    snprintf(err, errlen, "cannot open state directory '%s': %s", path, ctrun_strerror(r));
    free(w);
    return r;
  }
  if (!GetFileInformationByHandle(h, &info) ||
      (info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0 ||
      (info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) == 0) {
    bool link = (info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0;
    snprintf(err, errlen, link ? "state directory '%s' is a symbolic link or junction (refused)"
                               : "state directory '%s' is not a directory", path);
    CloseHandle(h);
    free(w);
    return link ? UV_ELOOP : UV_ENOTDIR;
  }
  r = owned_by_us(h, &ours);
  if (r != 0 || !ours) {
    if (r != 0)
      snprintf(err, errlen, "cannot read the owner of state directory '%s': %s", path,
               ctrun_strerror(r));
    else
      snprintf(err, errlen, "state directory '%s' is owned by another user (refused)", path);
    CloseHandle(h);
    free(w);
    return r != 0 ? r : UV_EPERM;
  }
  d = malloc(sizeof *d + strlen(path) + 1);
  if (d == NULL) {
    CloseHandle(h);
    free(w);
    return UV_ENOMEM;
  }
  d->h = h;
  d->wpath = w;
  strcpy(d->path, path);
  *out = d;
  return 0;
}

void ctrun_dir_close(struct ctrun_dir *d) {
  if (d == NULL)
    return;
  CloseHandle(d->h);
  free(d->wpath);
  free(d);
}

const char *ctrun_dir_path(const struct ctrun_dir *d) { return d->path; }

/* A RAM disk is no concern of Windows' own: every directory may. */
bool ctrun_dir_outlives_boot(const struct ctrun_dir *d) {
  (void)d;
  return true;
}

/* D's path joined with NAME, a plain file name. */
static wchar_t *join(struct ctrun_dir *d, const char *name) {
  wchar_t *w, *p;
  size_t dl, nl;
  if (name[0] == '\0' || strpbrk(name, "\\/:") != NULL)
    return NULL;
  w = ctrun_win_wide(name);
  if (w == NULL)
    return NULL;
  dl = wcslen(d->wpath);
  nl = wcslen(w);
  p = malloc((dl + nl + 2) * sizeof *p);
  if (p != NULL) {
    wmemcpy(p, d->wpath, dl);
    p[dl] = L'\\';
    wmemcpy(p + dl + 1, w, nl + 1);
  }
  free(w);
  return p;
}

/* Open W as a regular file (or, with CHAR_OK, a character device such as
 * NUL) for ctrun alone: not inherited, not through a reparse point; then
 * as a CRT descriptor. */
static int open_file_as(const wchar_t *w, DWORD access, DWORD disposition, int crt_flags,
                        DWORD file_flags, bool char_ok) {
  BY_HANDLE_FILE_INFORMATION info;
  HANDLE h = CreateFileW(w, access, SHARE_ALL, NULL, disposition,
                         FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT | file_flags, NULL);
  DWORD type;
  int fd;
  if (h == INVALID_HANDLE_VALUE)
    return ctrun_win_error(GetLastError());
  type = GetFileType(h);
  if (type == FILE_TYPE_CHAR && char_ok) {
    memset(&info, 0, sizeof info);
  } else if (type != FILE_TYPE_DISK || !GetFileInformationByHandle(h, &info)) {
    CloseHandle(h);
    return UV_EINVAL;
  }
  if (info.dwFileAttributes & (FILE_ATTRIBUTE_REPARSE_POINT | FILE_ATTRIBUTE_DIRECTORY)) {
    CloseHandle(h);
    return info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT ? UV_ELOOP : UV_EISDIR;
  }
  fd = _open_osfhandle((intptr_t)h, crt_flags);
  if (fd < 0) {
    CloseHandle(h);
    return UV_EMFILE;
  }
  return fd;
}

static int open_file(const wchar_t *w, DWORD access, DWORD disposition, int crt_flags) {
  return open_file_as(w, access, disposition, crt_flags, FILE_FLAG_OVERLAPPED, false);
}

int ctrun_dir_openat(struct ctrun_dir *d, const char *name, int flags) {
  DWORD access, disposition;
  wchar_t *w = join(d, name);
  int fd;

  if (w == NULL)
    return UV_EINVAL;
  switch (flags & (O_RDONLY | O_WRONLY | O_RDWR)) {
  case O_WRONLY: access = GENERIC_WRITE; break;
  case O_RDWR: access = GENERIC_READ | GENERIC_WRITE; break;
  default: access = GENERIC_READ; break;
  }
  if ((flags & O_CREAT) && (flags & O_EXCL))
    disposition = CREATE_NEW;
  else if ((flags & O_CREAT) && (flags & O_TRUNC))
    disposition = CREATE_ALWAYS;
  else if (flags & O_CREAT)
    disposition = OPEN_ALWAYS;
  else if (flags & O_TRUNC)
    disposition = TRUNCATE_EXISTING;
  else
    disposition = OPEN_EXISTING;
  fd = open_file(w, access, disposition, access == GENERIC_READ ? _O_RDONLY : 0);
  free(w);
  return fd;
}

/* How long a replacement waits for a reader that holds the target open
 * without sharing delete: readers are brief. */
#define REPLACE_WAIT_MS 2000

/* The POSIX rename of Windows 10 1607 and later (NTFS): replaces TO even
 * while it is open, provided its openers share delete; they go on reading
 * the old file.  Returns 0 or the Windows error.  FILE_RENAME_INFO's name
 * is declared as one character: the buffer is built by offsets, never
 * written through that array. */
static DWORD posix_rename(const wchar_t *from, const wchar_t *to) {
  const size_t head = offsetof(FILE_RENAME_INFO, FileName);
  size_t tl = wcslen(to), size = head + (tl + 1) * sizeof(WCHAR);
  DWORD flags = FILE_RENAME_FLAG_REPLACE_IF_EXISTS | FILE_RENAME_FLAG_POSIX_SEMANTICS;
  DWORD len = (DWORD)(tl * sizeof(WCHAR)), e = 0;
  char *info;
  HANDLE h;

  if (size > 0xffffffffu || (info = calloc(1, size)) == NULL)
    return ERROR_NOT_ENOUGH_MEMORY;
  memcpy(info, &flags, sizeof flags);
  memcpy(info + offsetof(FILE_RENAME_INFO, FileNameLength), &len, sizeof len);
  memcpy(info + head, to, (tl + 1) * sizeof(WCHAR));
  h = CreateFileW(from, DELETE | SYNCHRONIZE, SHARE_ALL, NULL, OPEN_EXISTING,
                  FILE_FLAG_OPEN_REPARSE_POINT, NULL);
  if (h == INVALID_HANDLE_VALUE)
    e = GetLastError();
  else if (!SetFileInformationByHandle(h, RENAME_INFO_EX, info, (DWORD)size))
    e = GetLastError();
  if (h != INVALID_HANDLE_VALUE)
    CloseHandle(h);
  free(info);
  return e;
}

/* Where the POSIX rename is missing (before Windows 10, FAT, network
 * drives, Wine): move the open target aside (its openers share delete),
 * under a name made from FROM's, which is ctrun's own and unique, put
 * FROM in its place and delete the old one, which goes once its last
 * handle closes.  Not atomic: for a moment TO does not exist, but it is
 * never half written. */
static bool rename_aside(const wchar_t *from, const wchar_t *to) {
  size_t n = wcslen(from);
  wchar_t *aside = malloc((n + 5) * sizeof *aside);
  bool ok = false;

  if (aside == NULL)
    return false;
  wmemcpy(aside, from, n);
  wmemcpy(aside + n, L".old", 5);
  if (MoveFileExW(to, aside, MOVEFILE_REPLACE_EXISTING)) {
    ok = MoveFileExW(from, to, 0);
    if (ok)
      DeleteFileW(aside);
    else
      MoveFileExW(aside, to, 0);
  }
  free(aside);
  return ok;
}

/* Rename FROM to TO, replacing TO.  MoveFileExW is atomic, but refuses a
 * TO that is open, even by a reader that shares delete; then the POSIX
 * rename does it, or, where that is missing, the move aside.  A reader
 * that does not share delete blocks every way, and is waited for. */
static int replace(const wchar_t *from, const wchar_t *to) {
  ULONGLONG deadline = GetTickCount64() + REPLACE_WAIT_MS;

  for (;;) {
    DWORD e, p, a;
    if (MoveFileExW(from, to, MOVEFILE_REPLACE_EXISTING))
      return 0;
    e = GetLastError();
    a = GetFileAttributesW(to);
    if ((e != ERROR_ACCESS_DENIED && e != ERROR_SHARING_VIOLATION) ||
        (a != INVALID_FILE_ATTRIBUTES && (a & (FILE_ATTRIBUTE_READONLY | FILE_ATTRIBUTE_DIRECTORY))))
      return ctrun_win_error(e); /* refused for good, not for the moment */
    p = posix_rename(from, to);
    if (p == 0)
      return 0;
    if (p != ERROR_SHARING_VIOLATION && p != ERROR_ACCESS_DENIED && rename_aside(from, to))
      return 0;
    if (GetTickCount64() >= deadline)
      return ctrun_win_error(e);
    Sleep(50);
  }
}

int ctrun_dir_rename(struct ctrun_dir *d, const char *from, const char *to) {
  wchar_t *wf = join(d, from), *wt = join(d, to);
  int r = wf == NULL || wt == NULL ? UV_EINVAL : replace(wf, wt);
  free(wf);
  free(wt);
  return r;
}

int ctrun_dir_unlink(struct ctrun_dir *d, const char *name) {
  wchar_t *w = join(d, name);
  int r = 0;
  if (w == NULL)
    return UV_EINVAL;
  if (!DeleteFileW(w))
    r = ctrun_win_error(GetLastError());
  free(w);
  return r;
}

int ctrun_dir_each(struct ctrun_dir *d, int (*fn)(const char *name, void *arg), void *arg) {
  WIN32_FIND_DATAW fd;
  size_t n = wcslen(d->wpath);
  wchar_t *pattern = malloc((n + 3) * sizeof *pattern);
  HANDLE h;
  int r = 0;

  if (pattern == NULL)
    return UV_ENOMEM;
  wmemcpy(pattern, d->wpath, n);
  wmemcpy(pattern + n, L"\\*", 3);
  h = FindFirstFileW(pattern, &fd);
  free(pattern);
  if (h == INVALID_HANDLE_VALUE)
    return GetLastError() == ERROR_FILE_NOT_FOUND ? 0 : ctrun_win_error(GetLastError());
  do {
    char *name;
    if (wcscmp(fd.cFileName, L".") == 0 || wcscmp(fd.cFileName, L"..") == 0)
      continue;
    name = ctrun_win_utf8(fd.cFileName);
    if (name == NULL)
      continue;
    r = fn(name, arg);
    free(name);
  } while (r == 0 && FindNextFileW(h, &fd));
  FindClose(h);
  return r;
}

bool ctrun_dir_same_file(struct ctrun_dir *d, const char *name, int fd) {
  BY_HANDLE_FILE_INFORMATION a, b;
  wchar_t *w = join(d, name);
  HANDLE h;
  bool same;

  if (w == NULL)
    return false;
  h = CreateFileW(w, FILE_READ_ATTRIBUTES, SHARE_ALL, NULL, OPEN_EXISTING,
                  FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS, NULL);
  free(w);
  if (h == INVALID_HANDLE_VALUE)
    return false;
  same = GetFileInformationByHandle(h, &a) && GetFileInformationByHandle(os_handle(fd), &b) &&
         a.dwVolumeSerialNumber == b.dwVolumeSerialNumber && a.nFileIndexHigh == b.nFileIndexHigh &&
         a.nFileIndexLow == b.nFileIndexLow;
  CloseHandle(h);
  return same;
}

static void at(OVERLAPPED *ov, uint64_t off, HANDLE ev) {
  memset(ov, 0, sizeof *ov);
  ov->Offset = (DWORD)off;
  ov->OffsetHigh = (DWORD)(off >> 32);
  ov->hEvent = ev;
}

/* One read or write of at most N bytes at OFF; *DONE is 0 at the end of the
 * file.  Works on overlapped and synchronous handles alike. */
static int io(HANDLE h, bool write, void *buf, DWORD n, uint64_t off, DWORD *done) {
  OVERLAPPED ov;
  HANDLE ev = CreateEventW(NULL, TRUE, FALSE, NULL);
  BOOL ok;
  DWORD e = 0;

  if (ev == NULL)
    return ctrun_win_error(GetLastError());
  at(&ov, off, ev);
  *done = 0;
  ok = write ? WriteFile(h, buf, n, NULL, &ov) : ReadFile(h, buf, n, NULL, &ov);
  if (!ok && GetLastError() != ERROR_IO_PENDING)
    e = GetLastError();
  else if (!GetOverlappedResult(h, &ov, done, TRUE))
    e = GetLastError();
  CloseHandle(ev);
  if (e == ERROR_HANDLE_EOF) {
    *done = 0;
    e = 0;
  }
  return e ? ctrun_win_error(e) : 0;
}

/* One attempt that does not wait: 0, UV_EBUSY or an error. */
static int try_lock(HANDLE h, DWORD flags) {
  OVERLAPPED ov;
  HANDLE ev = CreateEventW(NULL, TRUE, FALSE, NULL);
  DWORD n, e = 0;

  if (ev == NULL)
    return ctrun_win_error(GetLastError());
  at(&ov, LOCK_AT, ev);
  if (!LockFileEx(h, flags | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ov)) {
    e = GetLastError();
    if (e == ERROR_IO_PENDING)
      e = GetOverlappedResult(h, &ov, &n, TRUE) ? 0 : GetLastError();
  }
  CloseHandle(ev);
  if (e == ERROR_LOCK_VIOLATION || e == ERROR_SHARING_VIOLATION)
    return UV_EBUSY;
  return e ? ctrun_win_error(e) : 0;
}

/* A request that waits for the lock, bounded by WAIT_MS.  Windows grants a
 * pending request the moment the holder lets go; Wine leaves it pending
 * for ever, so each slice of the wait also tries to take the lock
 * outright. */
static int wait_lock(HANDLE h, DWORD flags, uint64_t wait_ms) {
  OVERLAPPED ov;
  HANDLE ev = CreateEventW(NULL, TRUE, FALSE, NULL);
  uint64_t deadline = uv_hrtime() / 1000000 + wait_ms;
  DWORD n, e;
  int r = UV_EBUSY;

  if (ev == NULL)
    return ctrun_win_error(GetLastError());
  at(&ov, LOCK_AT, ev);
  ov.Internal = STATUS_PENDING; /* until someone says otherwise */
  if (LockFileEx(h, flags, 0, 1, 0, &ov)) {
    CloseHandle(ev);
    return 0;
  }
  e = GetLastError();
  if (e != ERROR_IO_PENDING) {
    CloseHandle(ev);
    return e == ERROR_LOCK_VIOLATION ? UV_EBUSY : ctrun_win_error(e);
  }
  for (;;) {
    uint64_t now = uv_hrtime() / 1000000;
    DWORD slice = LOCK_SLICE_MS;
    if (wait_ms != CTRUN_DURATION_INF && now >= deadline)
      break;
    if (wait_ms != CTRUN_DURATION_INF && deadline - now < slice)
      slice = (DWORD)(deadline - now);
    if (WaitForSingleObject(ev, slice) == WAIT_OBJECT_0) {
      r = GetOverlappedResult(h, &ov, &n, FALSE) ? 0 : ctrun_win_error(GetLastError());
      CloseHandle(ev);
      return r;
    }
    if ((r = try_lock(h, flags)) != UV_EBUSY)
      break;
  }
  /* Withdraw the pending request.  If it was granted meanwhile, it is
   * ours (and a second shared grant is given back).  A request that was
   * never queued (Wine) cannot be cancelled and is still marked pending. */
  bool granted = false;
  if (CancelIoEx(h, &ov))
    granted = GetOverlappedResult(h, &ov, &n, TRUE) != 0;
  else
    granted = HasOverlappedIoCompleted(&ov) && ov.Internal == 0;
  if (granted) {
    if (r == 0)
      UnlockFileEx(h, 0, 1, 0, &ov);
    r = 0;
  }
  CloseHandle(ev);
  return r;
}

int ctrun_fd_lock(int fd, enum ctrun_lock_mode mode, uint64_t wait_ms) {
  HANDLE h = os_handle(fd);
  DWORD flags = mode == CTRUN_LOCK_EXCLUSIVE ? LOCKFILE_EXCLUSIVE_LOCK : 0;
  int r;

  if (h == INVALID_HANDLE_VALUE)
    return UV_EBADF;
  r = try_lock(h, flags);
  if (r != UV_EBUSY || wait_ms == 0)
    return r;
  return wait_lock(h, flags, wait_ms);
}

void ctrun_fd_unlock(int fd) {
  OVERLAPPED ov;
  at(&ov, LOCK_AT, NULL);
  UnlockFileEx(os_handle(fd), 0, 1, 0, &ov);
}

int ctrun_fd_write_at(int fd, const void *buf, size_t len, uint64_t off) {
  HANDLE h = os_handle(fd);
  size_t done = 0;
  while (done < len) {
    DWORD n, chunk = len - done > 1 << 20 ? 1 << 20 : (DWORD)(len - done);
    int r = io(h, true, (char *)buf + done, chunk, off + done, &n);
    if (r != 0)
      return r;
    if (n == 0)
      return UV_EIO;
    done += n;
  }
  return 0;
}

int ctrun_fd_rewrite(int fd, const void *buf, size_t len) {
  int r = ctrun_fd_write_at(fd, buf, len, 0);
  return r != 0 ? r : ctrun_fd_truncate(fd, len);
}

int ctrun_fd_truncate(int fd, uint64_t size) {
  HANDLE h = os_handle(fd);
  LARGE_INTEGER end;
  end.QuadPart = (LONGLONG)size;
  if (!SetFilePointerEx(h, end, NULL, FILE_BEGIN) || !SetEndOfFile(h))
    return ctrun_win_error(GetLastError());
  return 0;
}

int ctrun_fd_info(int fd, struct ctrun_file_info *info) {
  BY_HANDLE_FILE_INFORMATION i;
  if (!GetFileInformationByHandle(os_handle(fd), &i))
    return ctrun_win_error(GetLastError());
  snprintf(info->id, sizeof info->id, "%lu:%llu", (unsigned long)i.dwVolumeSerialNumber,
           (unsigned long long)i.nFileIndexHigh << 32 | i.nFileIndexLow);
  info->size = (uint64_t)i.nFileSizeHigh << 32 | i.nFileSizeLow;
  info->links = (unsigned)i.nNumberOfLinks;
  return 0;
}

int ctrun_fd_read_from(int fd, uint64_t from, size_t max, char **out, size_t *len) {
  HANDLE h = os_handle(fd);
  /* A page at first where a file may be large: an entry, a history's
   * tail, whole in one read (and EOF in one more). */
  size_t cap = max >= 4096 ? 4096 - 1 : 1024, got = 0;
  char *buf = malloc(cap + 1);

  if (buf == NULL)
    return UV_ENOMEM;
  for (;;) {
    DWORD n;
    int r;
    if (got == cap) {
      char *bigger;
      if (cap >= max) {
        free(buf);
        return UV_EFBIG;
      }
      cap *= 2;
      bigger = realloc(buf, cap + 1);
      if (bigger == NULL) {
        free(buf);
        return UV_ENOMEM;
      }
      buf = bigger;
    }
    r = io(h, false, buf + got, (DWORD)(cap - got), from + got, &n);
    if (r != 0) {
      free(buf);
      return r;
    }
    if (n == 0)
      break;
    got += n;
  }
  buf[got] = '\0';
  *out = buf;
  *len = got;
  return 0;
}

const char *ctrun_strerror(int err) { return uv_strerror(err); }

int ctrun_file_open(const char *path, enum ctrun_file_use use, char *err, size_t errlen) {
  wchar_t *w = path[0] != '\0' ? wide_path(path) : NULL;
  int fd;

  if (w == NULL) {
    ctrun_file_error(err, errlen, use, path, UV_EILSEQ);
    return UV_EINVAL;
  }
  /* Never through a reparse point: a link planted in a shared directory
   * must not make ctrun create or rewrite another file. */
  switch (use) {
  case CTRUN_FILE_LOCK:
    fd = open_file(w, GENERIC_READ | GENERIC_WRITE, OPEN_ALWAYS, 0);
    if (fd == UV_EACCES || fd == UV_EPERM)
      fd = open_file(w, GENERIC_READ, OPEN_EXISTING, _O_RDONLY);
    break;
  case CTRUN_FILE_LOG:
    /* FILE_APPEND_DATA without FILE_WRITE_DATA: the handle cannot write
     * at an offset, so every write lands at the end of the file, at once,
     * whoever holds the handle (the command gets a duplicate of it) and
     * whatever its file position says; O_APPEND semantics, which the C
     * runtime's _O_APPEND (a seek, then a write) does not give. */
    fd = open_file_as(w, FILE_APPEND_DATA | SYNCHRONIZE, OPEN_ALWAYS, _O_APPEND | _O_BINARY, 0,
                      true);
    break;
  default:
    fd = open_file_as(w, GENERIC_WRITE, CREATE_NEW, _O_BINARY, 0, false);
    break;
  }
  free(w);
  if (fd < 0)
    ctrun_file_error(err, errlen, use, path, fd);
  return fd;
}

bool ctrun_path_is_dir(const char *path) {
  wchar_t *w = wide_path(path);
  DWORD a = w != NULL ? GetFileAttributesW(w) : INVALID_FILE_ATTRIBUTES;
  free(w);
  return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY);
}

int ctrun_file_replace(const char *from, const char *to) {
  wchar_t *wf = wide_path(from), *wt = wide_path(to);
  int r = wf == NULL || wt == NULL ? UV_EINVAL : replace(wf, wt);
  free(wf);
  free(wt);
  return r;
}

int ctrun_file_remove(const char *path) {
  wchar_t *w = wide_path(path);
  int r = w != NULL && DeleteFileW(w) ? 0 : w == NULL ? UV_EINVAL : ctrun_win_error(GetLastError());
  free(w);
  return r;
}

int ctrun_tmpfile(void) {
  wchar_t dir[MAX_PATH + 1], name[MAX_PATH + 1];
  HANDLE h;
  int fd;
  /* In the user's temporary directory (tmpfile() of older C runtimes
   * writes to the root of the drive), deleted when its handle closes, and
   * shared with no one: no other process can open it (the command writes
   * through a duplicate of ctrun's handle), and one that opened it in the
   * moment after GetTempFileNameW made it makes this open fail. */
  if (GetTempPathW(MAX_PATH + 1, dir) == 0 || GetTempFileNameW(dir, L"ctr", 0, name) == 0)
    return ctrun_win_error(GetLastError());
  h = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
                  FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE, NULL);
  if (h == INVALID_HANDLE_VALUE) {
    DWORD e = GetLastError();
    DeleteFileW(name);
    return ctrun_win_error(e);
  }
  fd = _open_osfhandle((intptr_t)h, _O_BINARY);
  if (fd < 0) {
    CloseHandle(h);
    return UV_EMFILE;
  }
  return fd;
}

int ctrun_fd_write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    unsigned chunk = len > 1u << 30 ? 1u << 30 : (unsigned)len;
    int n = _write(fd, p, chunk);
    if (n <= 0)
      return n < 0 ? UV_EIO : UV_EIO;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int ctrun_fd_copy(int from, int to) {
  char buf[65536];
  int n, r = 0;
  if (_lseeki64(from, 0, SEEK_SET) != 0)
    return UV_EIO;
  while (r == 0 && (n = _read(from, buf, sizeof buf)) > 0)
    r = ctrun_fd_write_all(to, buf, (size_t)n);
  return r;
}

int ctrun_fd_close(int fd) { return _close(fd) == 0 ? 0 : UV_EBADF; }

bool ctrun_fd_is_file(int fd) {
  HANDLE h = (HANDLE)_get_osfhandle(fd);
  DWORD mode;
  if (h == INVALID_HANDLE_VALUE)
    return false;
  switch (GetFileType(h)) {
  case FILE_TYPE_DISK: return true;
  case FILE_TYPE_CHAR: return !GetConsoleMode(h, &mode); /* NUL, not a console */
  default: return false;
  }
}

/* Environment variable NAME, from the process's UTF-16 environment, as a
 * new string; NULL when it is unset or empty.  The C runtime's getenv()
 * (and the _wgetenv() of a program with main(), whose wide environment is
 * converted from the narrow one) sees it in the ANSI code page: a profile
 * under C:\Users\José or C:\Users\Дмитрий would not survive that. */
static wchar_t *env_wide(const wchar_t *name) {
  DWORD n = GetEnvironmentVariableW(name, NULL, 0), got;
  wchar_t *v;
  if (n <= 1 || (v = malloc((size_t)n * sizeof *v)) == NULL)
    return NULL;
  got = GetEnvironmentVariableW(name, v, n);
  if (got == 0 || got >= n) {
    free(v);
    return NULL;
  }
  return v;
}

int ctrun_statedir_path(char *buf, size_t size, char *err, size_t errlen) {
  const char *var = "CTRUN_STATE_DIR", *sub = "";
  wchar_t *v = env_wide(L"CTRUN_STATE_DIR");
  char *u;
  int n;

  if (v == NULL) {
    DWORD a;
    var = "LOCALAPPDATA";
    sub = "\\ctrun";
    v = env_wide(L"LOCALAPPDATA");
    if (v == NULL) {
      snprintf(err, errlen, "no state directory: set CTRUN_STATE_DIR (or LOCALAPPDATA)");
      return UV_ENOENT;
    }
    /* ctrun makes its own directory below the base, never the base
     * itself: a profile directory that does not exist is a broken
     * environment, not a path to create. */
    a = GetFileAttributesW(v);
    if (a == INVALID_FILE_ATTRIBUTES || !(a & FILE_ATTRIBUTE_DIRECTORY)) {
      u = ctrun_win_utf8(v);
      snprintf(err, errlen, "no state directory: LOCALAPPDATA '%s' is not a directory; set "
               "CTRUN_STATE_DIR", u != NULL ? u : "?");
      free(u);
      free(v);
      return UV_ENOENT;
    }
  }
  u = ctrun_win_utf8(v);
  free(v);
  if (u == NULL) {
    snprintf(err, errlen, "no state directory: %s is not a valid path", var);
    return UV_EINVAL;
  }
  n = snprintf(buf, size, "%s%s", u, sub);
  free(u);
  if (n < 0 || (size_t)n >= size) {
    snprintf(err, errlen, "no state directory: %s is too long", var);
    return UV_ENAMETOOLONG;
  }
  return 0;
}

const char *ctrun_statedir_default(void) { return "%LOCALAPPDATA%\\ctrun"; }
