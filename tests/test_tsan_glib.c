/* The ThreadSanitizer shim (tests/tsan-glib.c) really works: state handed
 * between threads through GLib's primitives (GMutex, GCond, GAsyncQueue,
 * g_idle_add, g_once, GRecMutex, GRWLock) is race-free to TSan, and a real
 * race is still reported. Built and run only with -Db_sanitize=thread; every
 * case but the last fails (TSan aborts it) without the shim, except idle:
 * GLib wakes the main loop through an eventfd, whose read and write TSan
 * intercepts. */
#include <glib.h>
#include <string.h>

#define ROUNDS 2000

/* ---- GMutex ---------------------------------------------------------------- */

typedef struct {
  GMutex lock;
  long counter; /* plain memory, guarded by lock */
} Counter;

static gpointer
mutex_thread(gpointer data)
{
  Counter *c = data;
  for (int i = 0; i < ROUNDS; i++) {
    g_mutex_lock(&c->lock);
    c->counter++;
    g_mutex_unlock(&c->lock);
  }
  return NULL;
}

static gpointer
trylock_thread(gpointer data)
{
  Counter *c = data;
  for (int i = 0; i < ROUNDS; i++) {
    while (!g_mutex_trylock(&c->lock))
      g_thread_yield();
    c->counter++;
    g_mutex_unlock(&c->lock);
  }
  return NULL;
}

static void
test_mutex(void)
{
  Counter c = {0};
  g_mutex_init(&c.lock);
  GThread *a = g_thread_new("a", mutex_thread, &c);
  GThread *b = g_thread_new("b", trylock_thread, &c);
  mutex_thread(&c);
  g_thread_join(a);
  g_thread_join(b);
  g_assert_cmpint(c.counter, ==, 3 * ROUNDS);
  g_mutex_clear(&c.lock);
}

/* ---- GCond (wait and wait_until inside libglib relock the mutex) ----------- */

typedef struct {
  GMutex lock;
  GCond cond;
  int stage;    /* guarded */
  long payload; /* guarded */
} Handoff;

static gpointer
cond_thread(gpointer data)
{
  Handoff *h = data;
  for (int i = 1; i <= 200; i++) {
    g_mutex_lock(&h->lock);
    while (h->stage != 2 * i - 1)
      g_cond_wait(&h->cond, &h->lock);
    h->payload += i;
    h->stage++;
    g_cond_broadcast(&h->cond);
    g_mutex_unlock(&h->lock);
  }
  return NULL;
}

static void
test_cond(void)
{
  Handoff h = {0};
  g_mutex_init(&h.lock);
  g_cond_init(&h.cond);
  GThread *t = g_thread_new("cond", cond_thread, &h);
  for (int i = 1; i <= 200; i++) {
    g_mutex_lock(&h.lock);
    h.payload -= 1;
    h.stage++;
    g_cond_broadcast(&h.cond);
    while (h.stage != 2 * i) {
      gint64 until = g_get_monotonic_time() + G_TIME_SPAN_SECOND;
      (void)g_cond_wait_until(&h.cond, &h.lock, until);
    }
    g_mutex_unlock(&h.lock);
  }
  g_thread_join(t);
  g_assert_cmpint(h.payload, ==, 200 * 201 / 2 - 200);
  g_cond_clear(&h.cond);
  g_mutex_clear(&h.lock);
}

/* ---- GAsyncQueue: its GMutex/GCond are called from inside libglib ---------- */

typedef struct {
  int n;
  double values[8];
} Message;

static gpointer
producer(gpointer data)
{
  GAsyncQueue *q = data;
  for (int i = 0; i < 500; i++) {
    Message *m = g_new(Message, 1); /* written here, read by the consumer */
    m->n = i;
    for (int k = 0; k < 8; k++)
      m->values[k] = i + k;
    g_async_queue_push(q, m);
  }
  return NULL;
}

static void
test_async_queue(void)
{
  GAsyncQueue *q = g_async_queue_new();
  GThread *t = g_thread_new("producer", producer, q);
  for (int i = 0; i < 500; i++) {
    Message *m = g_async_queue_pop(q);
    g_assert_cmpint(m->n, ==, i);
    g_assert_cmpfloat(m->values[7], ==, i + 7);
    m->n = -1; /* the consumer writes too */
    g_free(m);
  }
  g_thread_join(t);
  g_async_queue_unref(q);
}

/* ---- g_idle_add and g_main_context_invoke: the main context's own lock ----- */

typedef struct {
  GMainLoop *loop;
  long result[4]; /* written by the worker before it posts, read on the main thread */
  int delivered;  /* main thread only */
} Post;

static gboolean
deliver_cb(gpointer data)
{
  Post *p = data;
  g_assert_cmpint(p->result[p->delivered], ==, 100 + p->delivered);
  if (++p->delivered == 4)
    g_main_loop_quit(p->loop);
  return G_SOURCE_REMOVE;
}

static gpointer
poster(gpointer data)
{
  Post *p = data;
  for (int i = 0; i < 4; i++) {
    g_usleep(1000);
    p->result[i] = 100 + i;
    if (i % 2)
      g_idle_add(deliver_cb, p);
    else
      g_main_context_invoke(NULL, deliver_cb, p);
  }
  return NULL;
}

static void
test_idle(void)
{
  Post p = {.loop = g_main_loop_new(NULL, FALSE)};
  GThread *t = g_thread_new("poster", poster, &p);
  g_main_loop_run(p.loop); /* the worker is still running: no join edge yet */
  g_assert_cmpint(p.delivered, ==, 4);
  g_thread_join(t);
  g_main_loop_unref(p.loop);
}

/* ---- g_once_init_enter / leave ------------------------------------------- */

typedef struct {
  int a, b;
} Table;

static Table *
shared_table(void)
{
  static Table *table;
  static gsize once;
  if (g_once_init_enter(&once)) {
    Table *t = g_new(Table, 1);
    g_usleep(2000); /* let the others reach g_once_init_enter */
    t->a = 3;
    t->b = 4;
    table = t;
    g_once_init_leave(&once, 1);
  }
  return table;
}

static gpointer
once_thread(gpointer data)
{
  Table *t = shared_table();
  return GINT_TO_POINTER(t->a * t->b);
}

static void
test_once(void)
{
  GThread *th[4];
  for (int i = 0; i < 4; i++)
    th[i] = g_thread_new("once", once_thread, NULL);
  for (int i = 0; i < 4; i++)
    g_assert_cmpint(GPOINTER_TO_INT(g_thread_join(th[i])), ==, 12);
}

/* ---- GRecMutex and GRWLock (pthread in GLib 2.74, intercepted by TSan) ------ */

typedef struct {
  GRecMutex rec;
  GRWLock rw;
  long rec_counter; /* guarded by rec */
  long rw_counter;  /* guarded by rw */
} Locks;

static gpointer
locks_thread(gpointer data)
{
  Locks *l = data;
  long seen = 0;
  for (int i = 0; i < ROUNDS; i++) {
    g_rec_mutex_lock(&l->rec);
    g_rec_mutex_lock(&l->rec);
    l->rec_counter++;
    g_rec_mutex_unlock(&l->rec);
    g_rec_mutex_unlock(&l->rec);
    g_rw_lock_reader_lock(&l->rw);
    seen += l->rw_counter;
    g_rw_lock_reader_unlock(&l->rw);
    g_rw_lock_writer_lock(&l->rw);
    l->rw_counter++;
    g_rw_lock_writer_unlock(&l->rw);
  }
  return GSIZE_TO_POINTER((gsize)seen);
}

static void
test_rec_rw(void)
{
  Locks l = {0};
  g_rec_mutex_init(&l.rec);
  g_rw_lock_init(&l.rw);
  GThread *t = g_thread_new("locks", locks_thread, &l);
  locks_thread(&l);
  g_thread_join(t);
  g_assert_cmpint(l.rec_counter, ==, 2 * ROUNDS);
  g_assert_cmpint(l.rw_counter, ==, 2 * ROUNDS);
  g_rw_lock_clear(&l.rw);
  g_rec_mutex_clear(&l.rec);
}

/* ---- a real race is still a race ------------------------------------------ */

static long unguarded;

static gpointer
racer(gpointer data)
{
  for (int i = 0; i < ROUNDS; i++)
    unguarded++;
  return NULL;
}

static void
test_race_reported(void)
{
  if (g_test_subprocess()) {
    GThread *a = g_thread_new("racer", racer, NULL);
    GThread *b = g_thread_new("racer", racer, NULL);
    g_thread_join(a);
    g_thread_join(b);
    return;
  }
  g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed();
  g_test_trap_assert_stderr("*WARNING: ThreadSanitizer: data race*racer*");
}

/* ---- and without the shim, GLib's locks are invisible to TSan --------------- */

static const char *self_path;

/* Runs one case of this program again with CONFORM_TSAN_SHIM=off. */
static void
run_without_shim(const char *path, gboolean *failed, char **out, char **err)
{
  char **envp = g_environ_setenv(g_get_environ(), "CONFORM_TSAN_SHIM", "off", TRUE);
  envp = g_environ_setenv(envp, "TSAN_OPTIONS", "halt_on_error=1:exitcode=66", TRUE);
  const char *argv[] = {self_path, "-p", path, NULL};
  int status = 0;
  GError *error = NULL;
  g_assert_true(g_spawn_sync(NULL, (char **)argv, envp, G_SPAWN_DEFAULT, NULL, NULL, out, err, &status, &error));
  g_assert_no_error(error);
  *failed = !g_spawn_check_wait_status(status, NULL);
  g_strfreev(envp);
}

static void
test_shim_needed(gconstpointer data)
{
  gboolean failed = FALSE;
  g_autofree char *out = NULL, *err = NULL;
  run_without_shim(data, &failed, &out, &err);
  if (!failed || !strstr(err, "ThreadSanitizer: data race"))
    g_test_message("without the shim: %s", err);
  g_assert_true(failed);
  g_assert_nonnull(strstr(err, "ThreadSanitizer: data race"));
}

int
main(int argc, char **argv)
{
  self_path = argv[0];
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/tsan-glib/mutex", test_mutex);
  g_test_add_func("/tsan-glib/cond", test_cond);
  g_test_add_func("/tsan-glib/async-queue", test_async_queue);
  g_test_add_func("/tsan-glib/idle", test_idle);
  g_test_add_func("/tsan-glib/once", test_once);
  g_test_add_func("/tsan-glib/rec-rw", test_rec_rw);
  g_test_add_func("/tsan-glib/race-reported", test_race_reported);
  g_test_add_data_func("/tsan-glib/shim-needed/mutex", "/tsan-glib/mutex", test_shim_needed);
  g_test_add_data_func("/tsan-glib/shim-needed/async-queue", "/tsan-glib/async-queue", test_shim_needed);
  g_test_add_data_func("/tsan-glib/shim-needed/cond", "/tsan-glib/cond", test_shim_needed);
  g_test_add_data_func("/tsan-glib/shim-needed/once", "/tsan-glib/once", test_shim_needed);
  return g_test_run();
}
