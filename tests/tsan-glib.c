/* ThreadSanitizer shim for GLib (compiled into every executable of a
 * -Db_sanitize=thread build, nothing else; see README "ThreadSanitizer").
 *
 * GLib 2.74 implements GMutex (and GCond on top of it) with a futex and
 * atomics of its own, in uninstrumented code, so TSan sees none of the
 * happens-before edges they make and reports false races on everything a
 * GMutex protects: our own locked state, and every hand-over through GLib
 * (GAsyncQueue, g_idle_add / g_main_context_invoke, GTask returning to the
 * main context, GCancellable).
 *
 * Interposing by symbol is not enough: Debian's libglib is linked with
 * -Bsymbolic-functions, so its own calls to g_mutex_lock (the main context,
 * GAsyncQueue, g_once, GCond) are direct calls that no definition in the
 * executable can catch. So at start-up this file redirects libglib's
 * g_mutex_lock, g_mutex_unlock and g_mutex_trylock themselves: their first
 * 12 bytes become an absolute jump to the implementations below, which keep
 * GLib's futex protocol word for word (0 free, 1 locked, 2 locked with
 * waiters: mutexes locked before the switch, or by g_cond_wait inside
 * libglib, stay compatible) and tell TSan about every lock and unlock
 * (__tsan_mutex_*), which gives the edges and lock-order checking. GCond
 * needs nothing more: g_cond_wait(_until) unlock and relock through the
 * redirected entry points.
 *
 * GRecMutex and GRWLock are pthread mutexes / rwlocks in GLib 2.74, which
 * TSan intercepts already. g_once_init_enter/leave publish the value with an
 * uninstrumented atomic that the G_DEFINE_TYPE / g_once_init_enter macro's
 * fast path reads with an instrumented one: the definitions below (found
 * before libglib's by the calls from the executable and from the other
 * libraries, through the PLT) add the release and acquire on the location.
 *
 * The patch is checked, not assumed: the code bytes must be the GLib 2.74
 * futex mutex, or the program stops at start-up with a message (a GLib that
 * changed its mutex needs this file looked at, not silent false reports). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <linux/futex.h>
#include <sanitizer/tsan_interface.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <glib.h>

/* ---- GMutex, GLib's futex protocol, annotated --------------------------------- */

static unsigned *
word(GMutex *m)
{
  return (unsigned *)&m->i[0];
}

static void
tsan_glib_mutex_lock(GMutex *m)
{
  __tsan_mutex_pre_lock(m, 0);
  unsigned expected = 0;
  if (!__atomic_compare_exchange_n(word(m), &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
    while (__atomic_exchange_n(word(m), 2, __ATOMIC_ACQUIRE) != 0)
      syscall(SYS_futex, word(m), FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
  }
  __tsan_mutex_post_lock(m, 0, 0);
}

static void
tsan_glib_mutex_unlock(GMutex *m)
{
  __tsan_mutex_pre_unlock(m, 0);
  unsigned prev = __atomic_exchange_n(word(m), 0, __ATOMIC_RELEASE);
  if (prev == 0) {
    fprintf(stderr, "Attempt to unlock mutex that was not locked\n");
    abort();
  }
  if (prev != 1)
    syscall(SYS_futex, word(m), FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  __tsan_mutex_post_unlock(m, 0);
}

static gboolean
tsan_glib_mutex_trylock(GMutex *m)
{
  __tsan_mutex_pre_lock(m, __tsan_mutex_try_lock);
  unsigned expected = 0;
  gboolean ok = __atomic_compare_exchange_n(word(m), &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
  __tsan_mutex_post_lock(m, __tsan_mutex_try_lock | (ok ? 0 : __tsan_mutex_try_lock_failed), 0);
  return ok;
}

/* ---- redirecting libglib's entry points --------------------------------------- */

/* movabs $target, %rax; jmp *%rax */
#define JUMP_LEN 12

static void
die(const char *what, const char *fn)
{
  fprintf(stderr, "tsan-glib: %s: %s; the ThreadSanitizer shim (tests/tsan-glib.c) does not know this GLib\n", fn,
          what);
  abort();
}

static void
redirect(const char *name, void *target, const unsigned char *expect, size_t expect_len)
{
  unsigned char *fn = dlsym(RTLD_DEFAULT, name);
  Dl_info info;
  if (!fn || !dladdr(fn, &info) || !info.dli_fname || !strstr(info.dli_fname, "libglib-2.0"))
    die("not found in libglib-2.0", name);
  if (memcmp(fn, expect, expect_len) != 0)
    die("code is not GLib 2.74's futex mutex", name);
  long page = sysconf(_SC_PAGESIZE);
  uintptr_t start = (uintptr_t)fn & ~(uintptr_t)(page - 1);
  size_t len = (size_t)((uintptr_t)fn + JUMP_LEN - start);
  if (mprotect((void *)start, len, PROT_READ | PROT_WRITE | PROT_EXEC) != 0)
    die("mprotect failed", name);
  unsigned char jump[JUMP_LEN] = {0x48, 0xb8};
  uintptr_t t = (uintptr_t)target;
  memcpy(jump + 2, &t, sizeof t);
  jump[10] = 0xff;
  jump[11] = 0xe0;
  memcpy(fn, jump, JUMP_LEN);
  if (mprotect((void *)start, len, PROT_READ | PROT_EXEC) != 0)
    die("mprotect failed", name);
  __builtin___clear_cache((char *)fn, (char *)fn + JUMP_LEN);
}

/* CONFORM_TSAN_SHIM=off leaves GLib alone (tests/test_tsan_glib.c checks
 * that TSan then reports the false races this file is for). */
static int shim_off;

/* Before main and before any thread of ours; the libraries' own constructors
 * (which ran first) hold no mutex by now. */
__attribute__((constructor(101))) static void
tsan_glib_init(void)
{
  const char *env = getenv("CONFORM_TSAN_SHIM");
  if (env && strcmp(env, "off") == 0) {
    __atomic_store_n(&shim_off, 1, __ATOMIC_RELAXED);
    return;
  }
  if (glib_major_version != 2 || glib_minor_version < 74 || glib_minor_version >= 80)
    die("version outside 2.74 .. 2.79", "glib");
  /* lock/trylock: xor %eax,%eax; mov $1,%edx; lock cmpxchg %edx,(%rdi)
   * unlock: xor %esi,%esi; xchg %esi,(%rdi); cmp $1,%esi */
  static const unsigned char lock[] = {0x31, 0xc0, 0xba, 0x01, 0x00, 0x00, 0x00, 0xf0, 0x0f, 0xb1, 0x17};
  static const unsigned char unlock[] = {0x31, 0xf6, 0x87, 0x37, 0x83, 0xfe, 0x01};
  redirect("g_mutex_lock", (void *)tsan_glib_mutex_lock, lock, sizeof lock);
  redirect("g_mutex_trylock", (void *)tsan_glib_mutex_trylock, lock, sizeof lock);
  redirect("g_mutex_unlock", (void *)tsan_glib_mutex_unlock, unlock, sizeof unlock);
}

/* ---- g_once_init_enter / g_once_init_leave (PLT interposition) ---------------- */

static void *
real(const char *name, void **slot)
{
  void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (!f) {
    f = dlsym(RTLD_NEXT, name);
    if (!f)
      die("not found after the executable", name);
    __atomic_store_n(slot, f, __ATOMIC_RELEASE);
  }
  return f;
}

gboolean(g_once_init_enter)(volatile void *location)
{
  static void *slot;
  gboolean (*f)(volatile void *) = (gboolean(*)(volatile void *))real("g_once_init_enter", &slot);
  gboolean need_init = f(location);
  if (!need_init && !__atomic_load_n(&shim_off, __ATOMIC_RELAXED)) /* another thread initialised it: see what it wrote */
    __tsan_acquire((void *)location);
  return need_init;
}

void(g_once_init_leave)(volatile void *location, gsize result)
{
  static void *slot;
  void (*f)(volatile void *, gsize) = (void (*)(volatile void *, gsize))real("g_once_init_leave", &slot);
  if (!__atomic_load_n(&shim_off, __ATOMIC_RELAXED))
    __tsan_release((void *)location);
  f(location, result);
}
