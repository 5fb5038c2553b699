/*
 * ss_stage.c - runs one stage script over batches of events (ss_stage.h).
 *
 * The script talks to us through the private module `ss.host`, which the
 * Lua side of zmq-rx / sgx-rx uses:
 *
 *   host.input(subject, addr)   the subject fromZmqSocket() returned
 *   host.output(addr)           -> emit, fail, done for subscribeToSocket()
 *   host.done()                 sendZmqCompleted()
 *   host.hostErrors             errors propagate to us (reject the event)
 *   host.in_enclave, host.name, host.stage
 *
 * Per event we call subject:onNext(value) under lua_pcall; whatever the
 * chain emits lands in emit(), which encodes it into the current output
 * buffer. An error rolls the output back to where the event started, so
 * a rejected event leaves no partial output behind.
 */
#include "lua/ss_stage.h"
#include "core/ss_log.h"
#include "lua/ss_lua.h"
#include "lua/ss_lua_canon.h"
#include "securestreams.h"
#include "lua/ss_lua_msgpack.h"
#include "wire/ss_msgpack.h"

#include "lua/ss_lua_api.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* One instance of a stage's Rx chain for one key group (see "key
 * groups" below): the main chunk run once more, in its own globals. */
typedef struct ss_inst {
    int group;        /* 0..SS_PARTITIONS-1 */
    int ref_subject;  /* its input subject ... */
    int ref_onnext;   /* ... subject.onNext */
    int ref_complete; /* ... subject.onCompleted */
    int ref_reg;      /* its list of stateful operators (rx.lua) */
    int ref_env;      /* its global table */
} ss_inst;

struct ss_stage {
    ss_lua *lua;
    lua_State *L;
    int ref_subject;   /* the input subject, or LUA_NOREF */
    int ref_onnext;    /* subject.onNext */
    int ref_complete;  /* subject.onCompleted */
    char *from, *to;
    char name[64], stage[64];
    int done_called, uses_sgx, stateful, in_enclave, outputs, host_errors;
    int rejects_sealed; /* in_enclave, and the records leave sealed */
    int output_done;   /* the socket subscriber saw onCompleted */
    int started;       /* a batch or the completion ran (no restore) */
    ss_stage_out *cur; /* where emit() writes (NULL: free-running) */
    ss_stage_out free_out;
    ss_stage_flush_fn flush;
    void *flush_arg;
    size_t flush_size;
    int flush_rc, flush_final;
    ss_stage_counts totals;
    /* location of the event being processed, for reject records */
    const ss_hdr *hdr;
    uint32_t index;
    /* the batch being processed (batch_step) and the event in progress:
     * where its encoding and its output start, for a rollback */
    const char *payload;
    size_t len, off;
    uint32_t count;
    size_t ev_start, ev_mark;
    uint32_t ev_cnt;
    uint64_t ev_outs;
    int decoded, malformed;
    /* instruction budget (see "the budget" below): `used` counts the
     * current event's (or the completion's) instructions while
     * `metered`; the flags are read by the timer's signal handler */
    uint64_t max_insns, used;
    volatile sig_atomic_t metered, in_hook, ticked, hooked;
    int over;
    int timed; /* 1: the CPU timer arms the hook; 0: always hooked */
    lua_State *volatile running; /* the coroutine running, or NULL */
    const char *metering; /* "an event", "the completion", ... */
    ss_stage_tick_fn tick; /* host duties during long user code */
    void *tick_arg;
    /* a chain sharing one Lua state (ss_stage_new_shared): the first
     * stage owns the state and runs every event; its output goes to the
     * next stage's subject, in Lua, without encoding */
    ss_stage *head;    /* the chain's first stage; NULL for that one */
    ss_stage *next;    /* the stage this one's output feeds, or NULL */
    ss_stage *loading; /* head: the stage whose script is loading */
    ss_stage *at;      /* head: the stage whose Lua runs (budget) */
    ss_stage *reject_as; /* head: name a reject after this stage */
    ss_stage_counts fc;  /* not the head: this stage's counters */
    /* a stage with a next one keeps what it emits in a Lua array (the
     * registry's pend_ref, 1..npend) until the event that emitted it
     * succeeded; then each value goes through the next stage under its
     * own protection (drain): see "a chain sharing one Lua state" */
    int pend_ref;
    uint32_t npend, dnext, ev_pmark;
    uint32_t in_index; /* later stages: index of the next value in what
                          the stage before handed on (this batch) */
    /* where this stage's output stood when its current value started */
    uint32_t mk_pend, mk_cnt;
    uint64_t mk_out, mk_bytes;
    size_t mk_len;
    int by_batch; /* head: hand values on per batch, not per event */
    /* keyed state: a stateful stage fed PARTITIONED batches keeps one
     * instance of its chain per key group (see "key groups" below) */
    char *src;          /* the script's text, to run it again */
    size_t src_len;
    char *chunk;        /* its chunk name */
    int ref_reg;        /* the load-time instance's operator list */
    int base_used;      /* the load-time instance got events */
    int base_restored;  /* ... or had its state restored */
    ss_inst *insts;     /* by increasing group */
    size_t ninst, capinst;
    ss_inst *loading_inst; /* the instance whose main chunk runs */
    int act_subject, act_onnext; /* what the batch running feeds */
    /* a later stage of a shared state: its own modules (registry refs of
     * its package.loaded, package.preload and files tables: "worlds") */
    int ref_loaded, ref_preload, ref_files;
    ss_buf xfer; /* head: a stateful stage's value, encoded on its way */
    char err[512];
};

/* --- the budget ------------------------------------------------------------
 *
 * A Lua count hook puts the VM in trap mode: every instruction then goes
 * through the hook machinery (+18 % instructions for DelayedFlights' Lua
 * stages, 2.2x for a tight loop). So in the normal case no hook is set.
 * While a stage runs Lua for an event, a completion or its main chunk
 * (and only then: the timer is armed around that, so waits elsewhere in
 * the host are never interrupted), a timer on the thread's CPU clock
 * fires every BUDGET_TICK_NS of CPU the thread burns; its signal handler
 * only arms a count hook of 1 on the thread running (lua_sethook may be
 * called from a signal handler). That hook calls the host's tick, then
 * counts the rest of the event's instructions by HOOK_STEP. An event
 * shorter than a tick is never hooked; a long one is counted from its
 * first tick on, so it is stopped after max_instructions counted plus at
 * most one tick of CPU (the budget never stops an event that ran fewer
 * than max_instructions instructions). The next event, or the end of the
 * batch, removes the hook. Lua 5.4 keeps a hook per coroutine: the stage
 * tracks the coroutine running (coroutine.resume and .wrap, see
 * track_coroutines) for the handler to arm; LuaJIT's hook is global.
 * Without the timer (timer_create failed) the count hook stays set from
 * start to end, which counts exactly, at the old price. */
#define HOOK_STEP 10000
#define BUDGET_TICK_NS 10000000L /* 10 ms of the thread's CPU */
#define BUDGET_SIGNAL SIGVTALRM

/* the stage whose Lua runs metered on this thread (read by the handler) */
static _Thread_local ss_stage *volatile tl_cur;
/* this thread's CPU timer: 0 not tried, 1 made, -1 cannot be made */
static _Thread_local int tl_timer_state;
static _Thread_local timer_t tl_timer;
static pthread_key_t timer_key;
static pthread_once_t timer_once = PTHREAD_ONCE_INIT;
static int timer_sig_ok;

static void count_hook(lua_State *L, lua_Debug *ar);

/* Runs on the thread whose CPU the timer measures. Touches only
 * sig_atomic_t flags and lua_sethook; skipped while the hook itself or
 * the stage's own code changes the hook (in_hook; tl_cur unset). */
static void budget_signal(int sig)
{
    (void)sig;
    int e = errno;
    ss_stage *s = tl_cur;
    if (s && s->metered && !s->in_hook) {
        s->ticked = 1;
        lua_State *L = s->running ? s->running : s->L;
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
        s->hooked = 1;
    }
    errno = e;
}

/* Deletes a thread's timer when the thread ends. */
static void timer_drop(void *arg)
{
    (void)arg;
    if (tl_timer_state == 1)
        timer_delete(tl_timer);
    tl_timer_state = 0;
}

static void timer_init_once(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = budget_signal;
    sa.sa_flags = SA_RESTART; /* read/write/futex restart, not fail */
    sigemptyset(&sa.sa_mask);
    timer_sig_ok = sigaction(BUDGET_SIGNAL, &sa, NULL) == 0 &&
                   pthread_key_create(&timer_key, timer_drop) == 0;
}

/* Makes this thread's CPU timer (disarmed) if it has none; 0 or -1.
 * Called while a stage loads, i.e. before an enclave locks itself down
 * (timer_create is not in its allow list; timer_settime is). */
static int timer_ready(void)
{
    if (tl_timer_state)
        return tl_timer_state > 0 ? 0 : -1;
    tl_timer_state = -1;
    pthread_once(&timer_once, timer_init_once);
    if (!timer_sig_ok)
        return -1;
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = BUDGET_SIGNAL;
    ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, &tl_timer) != 0)
        return -1;
    if (pthread_setspecific(timer_key, &tl_timer) != 0) {
        timer_delete(tl_timer);
        return -1;
    }
    tl_timer_state = 1;
    return 0;
}

/* Arms (on) or disarms this thread's timer; 0, or -1 if it cannot (no
 * timer; a forked child, whose copy of our thread has none). */
static int timer_arm(int on)
{
    if (tl_timer_state != 1)
        return -1;
    struct itimerspec it;
    memset(&it, 0, sizeof it);
    if (on) {
        it.it_value.tv_nsec = BUDGET_TICK_NS;
        it.it_interval.tv_nsec = BUDGET_TICK_NS;
    }
    return timer_settime(tl_timer, 0, &it, NULL) == 0 ? 0 : -1;
}

/* Calls fn(arg) with the budget's signal blocked: host work that may wait
 * on a socket (a heartbeat, a flush) must not see EINTR from it. */
static void without_budget_signal(ss_stage *s, void (*fn)(ss_stage *))
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, BUDGET_SIGNAL);
    int blocked = s->timed && pthread_sigmask(SIG_BLOCK, &set, &old) == 0;
    fn(s);
    if (blocked)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void call_tick(ss_stage *s) { s->tick(s->tick_arg); }

static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    ss_stage *s = *(ss_stage **)lua_getextraspace(L);
    if (!s)
        return;
    s->in_hook = 1;
    atomic_signal_fence(memory_order_seq_cst);
    if (!s->metered) {
        /* a coroutine that kept the hook of an earlier event */
        if (s->timed)
            lua_sethook(L, NULL, 0, 0);
        else if (lua_gethookcount(L) != HOOK_STEP)
            lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_STEP);
        s->in_hook = 0;
        return;
    }
    s->used += (uint64_t)lua_gethookcount(L);
    /* in a shared state, the stage whose Lua runs: its own budget */
    const ss_stage *w = s->at ? s->at : s;
    if (s->used <= w->max_insns) {
        if (lua_gethookcount(L) != HOOK_STEP) /* armed at 1 */
            lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_STEP);
        int tick = s->ticked || !s->timed;
        s->ticked = 0;
        atomic_signal_fence(memory_order_seq_cst);
        s->in_hook = 0;
        if (tick && s->tick)
            without_budget_signal(s, call_tick);
        return;
    }
    s->over = 1;
    if (lua_gethookcount(L) != 1) /* every instruction, past pcalls */
        lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
    s->in_hook = 0;
    luaL_error(L, "stage '%s': %s ran past max_instructions ("
                  SS_LUA_FMT_INT " Lua instructions): stopped",
               w->stage, s->metering, SS_LUA_ARG_INT(w->max_insns));
}

/* Removes the hook a tick set on the running thread (the main one when
 * called between events). */
static void unhook(ss_stage *s)
{
    if (s->timed && s->hooked) {
        lua_sethook(s->L, NULL, 0, 0);
        s->hooked = 0;
    }
}

/* Starts metering one event, the completion or the script's loading
 * (what, for the error). Cheap: called per event. */
static void meter_start(ss_stage *s, const char *what)
{
    tl_cur = NULL; /* the handler keeps off while we change things */
    atomic_signal_fence(memory_order_seq_cst);
    s->metering = what;
    s->used = 0;
    s->over = 0;
    s->metered = 1;
    s->ticked = 0;
    unhook(s);
    if (!s->timed)
        lua_sethook(s->L, count_hook, LUA_MASKCOUNT, HOOK_STEP);
    atomic_signal_fence(memory_order_seq_cst);
    tl_cur = s;
}

/* Stops metering (between events too: an event's pcall returned). */
static void meter_stop(ss_stage *s)
{
    tl_cur = NULL;
    atomic_signal_fence(memory_order_seq_cst);
    s->metered = 0;
    unhook(s);
}

/* Around a stretch of metered Lua (a batch, a completion, the main
 * chunk): the timer runs only then, on the thread doing it. */
static void budget_begin(ss_stage *s)
{
    if (s->timed && (timer_ready() != 0 || timer_arm(1) != 0))
        s->timed = 0; /* a thread without a timer: count exactly instead */
}

static void budget_end(ss_stage *s)
{
    meter_stop(s);
    if (s->timed)
        timer_arm(0);
    s->running = NULL;
}

#ifndef SS_LUAJIT
/* coroutine.resume, tracking the coroutine running for the handler
 * (upvalues: the stage, the library's resume). */
static int co_resume(lua_State *L)
{
    ss_stage *s = lua_touserdata(L, lua_upvalueindex(1));
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "thread"); /* worded as the library does */
    lua_State *prev = s->running;
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_insert(L, 1);
    if (co) /* alive: it is our argument */
        s->running = co;
    int rc = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    s->running = prev;
    if (rc != LUA_OK)
        return lua_error(L);
    return lua_gettop(L);
}

/* What coroutine.wrap returns, tracking (upvalues: the stage, the
 * library's wrapped function, its coroutine). */
static int co_wrapped(lua_State *L)
{
    ss_stage *s = lua_touserdata(L, lua_upvalueindex(1));
    lua_State *co = lua_tothread(L, lua_upvalueindex(3));
    lua_State *prev = s->running;
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_insert(L, 1);
    if (co)
        s->running = co;
    int rc = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    s->running = prev;
    if (rc != LUA_OK) /* the library's message, position included */
        return lua_error(L);
    return lua_gettop(L);
}

/* coroutine.wrap (upvalues: the stage, the library's wrap). */
static int co_wrap(lua_State *L)
{
    ss_stage *s = lua_touserdata(L, lua_upvalueindex(1));
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1); /* the library's wrapper, whose upvalue is co */
    lua_pushlightuserdata(L, s);
    lua_pushvalue(L, -2);
    if (!lua_getupvalue(L, -1, 1) || !lua_isthread(L, -1))
        return luaL_error(L, "coroutine.wrap: no coroutine to track");
    lua_pushcclosure(L, co_wrapped, 3);
    return 1;
}

/* Replaces coroutine.resume and coroutine.wrap by tracking versions. */
static void track_coroutines(ss_stage *s)
{
    lua_State *L = s->L;
    lua_getglobal(L, "coroutine");
    if (lua_istable(L, -1)) {
        lua_pushlightuserdata(L, s);
        lua_getfield(L, -2, "resume");
        lua_pushcclosure(L, co_resume, 2);
        lua_setfield(L, -2, "resume");
        lua_pushlightuserdata(L, s);
        lua_getfield(L, -2, "wrap");
        lua_pushcclosure(L, co_wrap, 2);
        lua_setfield(L, -2, "wrap");
    }
    lua_pop(L, 1);
}
#else
static void track_coroutines(ss_stage *s) { (void)s; }
#endif

/* --- output records ---------------------------------------------------- */

/* See ss_stage.h. */
void ss_stage_out_init(ss_stage_out *o)
{
    memset(o, 0, sizeof *o);
    ss_buf_init(&o->events);
    ss_buf_init(&o->rejects);
}

/* See ss_stage.h. */
void ss_stage_out_reset(ss_stage_out *o)
{
    ss_buf_reset(&o->events);
    ss_buf_reset(&o->rejects);
    o->count = 0;
    o->nrejects = 0;
    memset(&o->delta, 0, sizeof o->delta);
}

/* See ss_stage.h. */
void ss_stage_out_release(ss_stage_out *o)
{
    ss_buf_release(&o->events);
    ss_buf_release(&o->rejects);
    ss_stage_out_init(o);
}

/* Records one rejected event (or `n` events of a broken batch). The event
 * itself is included as JSON when ev is given, except inside an enclave
 * whose records would leave in clear (outside the trust boundary). */
static void add_reject(ss_stage *s, ss_stage_out *o, uint32_t n,
                       const char *reason, const char *ev, size_t evlen)
{
    ss_buf *b = &o->rejects;
    const ss_hdr *h = s->hdr;
    const ss_stage *w = s->reject_as ? s->reject_as : s; /* its names */
    ss_buf_printf(b, "{\"stage\":");
    ss_buf_json_str(b, w->stage, strlen(w->stage));
    ss_buf_printf(b, ",\"worker\":");
    ss_buf_json_str(b, w->name, strlen(w->name));
    if (h)
        ss_buf_printf(b,
                      ",\"stream\":%u,\"seq\":%llu,\"part\":%u,"
                      "\"index\":%u,\"row\":%llu",
                      h->stream, (unsigned long long)h->seq, h->part,
                      s->index,
                      (unsigned long long)(h->first_row + s->index));
    if (n > 1)
        ss_buf_printf(b, ",\"events\":%u", n);
    ss_buf_printf(b, ",\"error\":");
    ss_buf_json_str(b, reason, strlen(reason));
    if (ev && (!s->in_enclave || s->rejects_sealed)) {
        size_t off = 0;
        ss_buf_printf(b, ",\"event\":");
        size_t mark = b->len;
        if (ss_mp_to_json(ev, evlen, &off, b) != 0) {
            b->len = mark;
            ss_buf_printf(b, "null");
        }
    }
    ss_buf_append(b, "}\n", 2);
    o->nrejects += n;
    o->delta.rejected += n;
}

/* --- the ss.host module ------------------------------------------------ */

static ss_stage *host_stage(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* The stage a host call made while a script loads is for: the one
 * loading into a shared state, else the state's own. */
static ss_stage *host_target(lua_State *L)
{
    ss_stage *s = host_stage(L);
    return s->loading ? s->loading : s;
}

static int host_input(lua_State *L)
{
    ss_stage *s = host_target(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *addr = luaL_optstring(L, 2, "");
    ss_inst *in = s->loading_inst;
    if (in) { /* the main chunk again, for one key group */
        if (in->ref_subject != LUA_NOREF)
            return luaL_error(L, "fromZmqSocket: a stage has one input "
                                 "socket, and this script opens a second "
                                 "(%s)", addr);
        lua_getfield(L, 1, "onNext");
        lua_getfield(L, 1, "onCompleted");
        if (!lua_isfunction(L, -1) || !lua_isfunction(L, -2))
            return luaL_error(L, "fromZmqSocket: subject has no onNext or "
                                 "onCompleted");
        in->ref_complete = luaL_ref(L, LUA_REGISTRYINDEX);
        in->ref_onnext = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_pushvalue(L, 1);
        in->ref_subject = luaL_ref(L, LUA_REGISTRYINDEX);
        return 0;
    }
    if (s->ref_subject != LUA_NOREF)
        return luaL_error(L, "fromZmqSocket: a stage has one input "
                             "socket, and this script opens a second (%s)",
                          addr);
    lua_getfield(L, 1, "onNext");
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "fromZmqSocket: subject has no onNext");
    s->ref_onnext = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, 1, "onCompleted");
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "fromZmqSocket: subject has no onCompleted");
    s->ref_complete = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 1);
    s->ref_subject = luaL_ref(L, LUA_REGISTRYINDEX);
    free(s->from);
    s->from = strdup(addr);
    return 0;
}

static void call_flush(ss_stage *s)
{
    s->flush_rc = s->flush(s->flush_arg, &s->free_out, s->flush_final);
}

/* Flushes the free-running output if it is over the threshold (or final).
 * Used when a script emits outside ss_stage_process (e.g. a source script
 * built on fromFileByLine). */
static void maybe_flush(ss_stage *s, int final)
{
    ss_stage_out *o = &s->free_out;
    if (!s->flush || s->flush_rc)
        return;
    if (!final && o->events.len < s->flush_size)
        return;
    s->flush_final = final;
    without_budget_signal(s, call_flush); /* it may wait on a socket */
    ss_stage_out_reset(o);
}

/* Stage t emits value 1 and has a next stage in its shared state: the
 * value is kept, as it is (no encoding), in t's array until the event
 * that emitted it has succeeded in t and t has taken the whole batch
 * (drain; per event with SS_CHAIN_DEFER=event); counted as an output of
 * t as if it had been written into a batch. */
static int keep(lua_State *L, ss_stage *t)
{
    ss_stage *h = t->head ? t->head : t;
    int ty = lua_type(L, 1);
    if (t->stateful && ty == LUA_TTABLE) {
        /* a stateful stage may keep what it emits (scan's accumulator)
         * and the next stage may change it: it gets a copy, as through
         * a socket (encoded and decoded: metatables and values that
         * cannot be sent are refused here, in t, as they would be) */
        ss_buf_reset(&h->xfer);
        size_t off = 0;
        if (ss_mp_encode_lua(L, 1, &h->xfer, h->err, sizeof h->err) ||
            ss_mp_decode_lua(L, h->xfer.data, h->xfer.len, &off, h->err,
                             sizeof h->err)) {
            lua_pushstring(L, h->err);
            return lua_error(L);
        }
        lua_replace(L, 1);
    } else if (ty == LUA_TFUNCTION || ty == LUA_TTHREAD ||
               ty == LUA_TUSERDATA || ty == LUA_TLIGHTUSERDATA) {
        /* what could not cross a socket does not cross here: the
         * encoder's own refusal, raised in the stage that emitted it */
        ss_buf scratch = SS_BUF_INIT;
        int rc = ss_mp_encode_lua(L, 1, &scratch, h->err, sizeof h->err);
        ss_buf_release(&scratch);
        if (rc) {
            lua_pushstring(L, h->err);
            return lua_error(L);
        }
    }
    if (t == h) {
        ss_stage_out *o = h->cur ? h->cur : &h->free_out;
        o->delta.out++;
    } else {
        t->fc.out++;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->pend_ref);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, (lua_Integer)++t->npend);
    lua_pop(L, 1);
    return 0;
}

/* Forgets t's kept values from index from + 1 on. */
static void unkeep(lua_State *L, ss_stage *t, uint32_t from)
{
    if (t->npend <= from)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->pend_ref);
    for (uint32_t i = from + 1; i <= t->npend; i++) {
        lua_pushnil(L);
        lua_rawseti(L, -2, (lua_Integer)i);
    }
    lua_pop(L, 1);
    t->npend = from;
}

/* Notes where stage n's output stands before it takes a value. */
static void mark(ss_stage *h, ss_stage *n)
{
    n->mk_pend = n->npend;
    n->mk_out = n->fc.out;
    n->mk_bytes = n->fc.out_bytes;
    if (h->cur) {
        n->mk_len = h->cur->events.len;
        n->mk_cnt = h->cur->count;
    }
}

static void drain(ss_stage *h, ss_stage *t);

/* lua_pcall'ed: hands t's kept values, from t->dnext on, to the next
 * stage's subject, one onNext each; per event (not by_batch), what that
 * stage keeps goes on at once. An error unwinds to drain(), which
 * rejects the value t->dnext in the next stage and calls us again. */
static int drain_step(lua_State *L)
{
    ss_stage *t = lua_touserdata(L, 1);
    ss_stage *h = t->head ? t->head : t, *n = t->next;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->pend_ref);    /* 2 */
    lua_rawgeti(L, LUA_REGISTRYINDEX, n->ref_onnext);  /* 3 */
    lua_rawgeti(L, LUA_REGISTRYINDEX, n->ref_subject); /* 4 */
    while (t->dnext <= t->npend) {
        mark(h, n);
        n->base_used = 1; /* its load-time instance got events */
        h->at = n;
        meter_start(h, "an event");
        lua_pushvalue(L, 3);
        lua_pushvalue(L, 4);
        lua_rawgeti(L, 2, (lua_Integer)t->dnext);
        lua_call(L, 2, 0);
        meter_stop(h);
        n->fc.in++;
        if (n->fc.out > n->mk_out)
            n->fc.passed++;
        else
            n->fc.dropped++;
        t->dnext++;
        n->in_index++;
        if (n->next && !h->by_batch)
            drain(h, n);
    }
    return 0;
}

/* Runs every value t kept through the next stage, each as that stage's
 * input event: an error rejects that value in that stage (named after
 * it, quoting the value, at its index in what t handed on) and rolls
 * back what the stage emitted for it, exactly as a separate stage would
 * (its own batch, its own process). Empties t's array. Never raises. */
static void drain(ss_stage *h, ss_stage *t)
{
    lua_State *L = h->L;
    ss_stage *n = t->next;
    int top = lua_gettop(L);
    t->dnext = 1;
    while (t->dnext <= t->npend) {
        lua_pushcfunction(L, drain_step);
        lua_pushlightuserdata(L, t);
        int st = lua_pcall(L, 1, 0, 0);
        meter_stop(h);
        h->running = NULL;
        if (st == LUA_OK)
            break;
        const char *m = lua_tostring(L, -1);
        char why[512];
        snprintf(why, sizeof why, "%s",
                 m ? m : "(error object is not a string)");
        lua_settop(L, top);
        if (st == LUA_ERRMEM)
            lua_gc(L, LUA_GCCOLLECT, 0);
        /* the value failed in n: roll back what n emitted for it */
        if (n->next)
            unkeep(L, n, n->mk_pend);
        else if (h->cur) {
            h->cur->events.len = n->mk_len;
            h->cur->count = n->mk_cnt;
        }
        n->fc.out = n->mk_out;
        n->fc.out_bytes = n->mk_bytes;
        n->fc.in++;
        n->fc.rejected++;
        if (h->cur) {
            ss_buf ev = SS_BUF_INIT;
            char ignored[128];
            lua_rawgeti(L, LUA_REGISTRYINDEX, t->pend_ref);
            lua_rawgeti(L, -1, (lua_Integer)t->dnext);
            int enc = ss_mp_encode_lua(L, -1, &ev, ignored, sizeof ignored);
            lua_settop(L, top);
            uint32_t index = h->index;
            h->index = n->in_index;
            h->reject_as = n;
            add_reject(h, h->cur, 1, why, enc ? NULL : ev.data,
                       enc ? 0 : ev.len);
            h->reject_as = NULL;
            h->index = index;
            h->cur->delta.rejected--; /* n's, counted above */
            ss_buf_release(&ev);
        }
        t->dnext++;
        n->in_index++;
    }
    unkeep(L, t, 0);
    h->at = h;
    lua_settop(L, top);
}

static int host_emit(lua_State *L)
{
    ss_stage *t = host_stage(L);
    if (lua_gettop(L) < 1)
        lua_pushnil(L);
    if (t->next)
        return keep(L, t);
    ss_stage *s = t->head ? t->head : t; /* whose buffers */
    ss_stage_out *o = s->cur ? s->cur : &s->free_out;
    size_t before = o->events.len;
    int rc = ss_mp_encode_lua(L, 1, &o->events, s->err, sizeof s->err);
    if (rc) { /* no position prefix: the reason names the value */
        lua_pushstring(L, s->err);
        return lua_error(L);
    }
    o->count++;
    if (t->head) { /* the last stage of a shared state */
        t->fc.out++;
        t->fc.out_bytes += o->events.len - before;
    } else {
        o->delta.out++;
    }
    if (!s->cur)
        maybe_flush(s, 0);
    return 0;
}

static int host_fail(lua_State *L)
{
    ss_stage *s = host_stage(L);
    const char *msg = luaL_tolstring(L, 1, NULL);
    if (s->cur) /* inside an event: reject it */
        return luaL_error(L, "%s", msg);
    if (s->in_enclave) /* the log is the host's; the reason may quote data */
        ss_error("stream error reached the output (reason withheld "
                 "inside the enclave)");
    else
        ss_error("stream error reached the output: %s", msg);
    return 0;
}

static int host_output_done(lua_State *L)
{
    ss_stage *t = host_stage(L);
    t->output_done = 1;
    ss_stage *s = t->head ? t->head : t;
    if (t->next) /* the chain completes the next stage after this one */
        return 0;
    if (!s->cur)
        maybe_flush(s, 1);
    return 0;
}

static int host_output(lua_State *L)
{
    ss_stage *s = host_target(L);
    const char *addr = luaL_optstring(L, 1, "");
    if (s->loading_inst) /* one key group's instance: the same output */
        s->outputs = 0;
    if (s->outputs++)
        return luaL_error(L, "subscribeToSocket: a stage has one output "
                             "socket, and this script opens a second (%s)",
                          addr);
    free(s->to);
    s->to = strdup(addr);
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, host_emit, 1);
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, host_fail, 1);
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, host_output_done, 1);
    return 3;
}

static int host_done(lua_State *L)
{
    host_target(L)->done_called = 1;
    return 0;
}

static int host_sgx(lua_State *L)
{
    host_target(L)->uses_sgx = 1;
    return 0;
}

static int open_host(lua_State *L)
{
    ss_stage *s = lua_touserdata(L, lua_upvalueindex(1));
    static const luaL_Reg fns[] = {{"input", host_input},
                                   {"output", host_output},
                                   {"done", host_done},
                                   {"sgx", host_sgx},
                                   {NULL, NULL}};
    lua_createtable(L, 0, 10);
    lua_pushlightuserdata(L, s);
    luaL_setfuncs(L, fns, 1);
    if (s->loading) /* a later stage's own copy of the module */
        s = s->loading;
    lua_pushboolean(L, s->host_errors);
    lua_setfield(L, -2, "hostErrors");
    lua_pushboolean(L, s->in_enclave);
    lua_setfield(L, -2, "in_enclave");
    lua_pushstring(L, s->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, s->stage);
    lua_setfield(L, -2, "stage");
    return 1;
}

/* --- life cycle ---------------------------------------------------------- */

#define PRISTINE_PRELOAD "ss.pristine_preload"
#define PRISTINE_LOADED "ss.pristine_loaded"

/* Pushes a shallow copy of the table at idx. */
static void push_copy(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
}

/* registry[to] = a copy of registry[from] (an empty table if none). */
static void copy_registry_table(lua_State *L, const char *from,
                                const char *to)
{
    lua_getfield(L, LUA_REGISTRYINDEX, from);
    if (lua_istable(L, -1))
        push_copy(L, -1);
    else
        lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, to);
    lua_pop(L, 1);
}

/* See ss_stage.h. */
int ss_stage_new(const ss_stage_opts *o, ss_stage **out, char *err,
                 size_t errlen)
{
    *out = NULL;
    ss_stage *s = calloc(1, sizeof *s);
    if (!s)
        return SS_ENOMEM;
    s->ref_subject = s->ref_onnext = s->ref_complete = LUA_NOREF;
    s->pend_ref = LUA_NOREF;
    s->ref_reg = LUA_NOREF;
    snprintf(s->name, sizeof s->name, "%s", o->name ? o->name : "worker");
    snprintf(s->stage, sizeof s->stage, "%s", o->stage ? o->stage : "");
    s->in_enclave = o->in_enclave;
    s->rejects_sealed = o->in_enclave && o->rejects_sealed;
    s->host_errors = o->host_errors;
    s->flush_size = SS_BATCH_DEFAULT_SIZE;
    ss_stage_out_init(&s->free_out);
    ss_buf_init(&s->xfer);
    ss_lua_opts lo = {o->mem_limit, o->sandboxed, s->name};
    int rc = ss_lua_new(&lo, &s->lua);
    if (rc) {
        snprintf(err, errlen, "cannot create a lua state: %s",
                 ss_strerror(rc));
        free(s);
        return rc;
    }
    s->L = ss_lua_state(s->lua);
    s->max_insns = o->max_instructions ? o->max_instructions
                                       : SS_STAGE_DEFAULT_MAX_INSTRUCTIONS;
    *(ss_stage **)lua_getextraspace(s->L) = s;
#ifdef SS_LUAJIT
    /* A loop LuaJIT compiled to a trace never looks at hooks, so no
     * budget could stop `while true do end` there: a metered stage runs
     * LuaJIT's interpreter, as every enclave does (the JIT compiles
     * little that matters in a stage: docs/PERFORMANCE.md). `sstream
     * lua` (not metered) keeps it. SS_LUAJIT=on keeps it in a stage
     * outside an enclave too: a measuring switch only (bench/run.sh),
     * since then no budget can stop a compiled endless loop. */
    const char *jit = getenv("SS_LUAJIT");
    int jit_on = jit && strcmp(jit, "on") == 0 && !o->sandboxed;
    if (o->host_errors && !jit_on)
        luaJIT_setmode(s->L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
#endif
    s->timed = !getenv("SS_BUDGET_EXACT"); /* exact: the old always-on
                                              hook (a measuring switch) */
    if (s->timed)
        track_coroutines(s);
    luaL_getsubtable(s->L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushlightuserdata(s->L, s);
    lua_pushcclosure(s->L, open_host, 1);
    lua_setfield(s->L, -2, "ss.host");
    lua_pop(s->L, 1);
    if (o->host_errors) {
        /* the modules before any script: where the later stages of a
         * chain sharing this state start from (ss_stage_new_shared) */
        copy_registry_table(s->L, LUA_PRELOAD_TABLE, PRISTINE_PRELOAD);
        copy_registry_table(s->L, LUA_LOADED_TABLE, PRISTINE_LOADED);
    }
    *out = s;
    if (o->script_path || o->script_src) {
        rc = ss_stage_load(s, o, err, errlen);
        if (rc) {
            ss_stage_destroy(out);
            return rc;
        }
    }
    return 0;
}

/* See ss_stage.h. */
void ss_stage_set_flush(ss_stage *s, ss_stage_flush_fn fn, void *arg,
                        size_t batch_size)
{
    s->flush = fn;
    s->flush_arg = arg;
    if (batch_size)
        s->flush_size = batch_size;
}

/* package.preload entry of a bundled module that does not compile:
 * requiring it raises the compiler's message. */
static int raise_load_error(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    return lua_error(L);
}

/* Makes the bundle's modules requirable: each is compiled now (text
 * only) and its chunk becomes its package.preload loader, so nothing
 * points into b afterwards. A built-in of the same name stays (rx, csv,
 * ... are the runtime's). */
static void register_bundle_in(lua_State *L, int preload,
                               const ss_bundle *b, int env);

static void register_bundle(lua_State *L, const ss_bundle *b)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    register_bundle_in(L, -1, b, 0);
    lua_pop(L, 1);
}

/* The same into the preload table at stack index preload, each module's
 * globals the table at env (0: the state's). */
static void register_bundle_in(lua_State *L, int preload,
                               const ss_bundle *b, int env)
{
    lua_pushvalue(L, preload);
    for (size_t i = 0; i < ss_bundle_nmodules(b); i++) {
        const char *name, *src;
        size_t len;
        ss_bundle_module(b, i, &name, &src, &len);
        lua_getfield(L, -1, name);
        int taken = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (taken)
            continue;
        char chunk[160];
        snprintf(chunk, sizeof chunk, "@%s.lua", name);
        if (luaL_loadbufferx(L, src, len, chunk, "t") != LUA_OK)
            lua_pushcclosure(L, raise_load_error, 1); /* the message */
        else if (env)
            ss_lua_set_chunk_env(L, -1, env);
        lua_setfield(L, -2, name);
    }
    lua_pop(L, 1);
}

/* lua_pcall'd: copies the bundle's data files (light userdata 1) into
 * the state's `files` module. */
static int add_files(lua_State *L)
{
    const ss_bundle *b = lua_touserdata(L, 1);
    for (size_t i = 0; i < ss_bundle_nfiles(b); i++) {
        const char *name, *data;
        size_t len;
        ss_bundle_file(b, i, &name, &data, &len);
        ss_lua_files_add(L, name, data, len);
    }
    return 0;
}

/* Pushes rx.checkpoint[fn] of the rx module table at idx and returns 1,
 * or pushes nothing and returns 0 (no such function: an rx module that
 * is not ours). */
static int checkpoint_fn(lua_State *L, int idx, const char *fn)
{
    idx = lua_absindex(L, idx);
    lua_getfield(L, idx, "checkpoint");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, fn);
        if (lua_isfunction(L, -1)) {
            lua_remove(L, -2);
            return 1;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 0;
}

/* Loads the rx module and opens its checkpoint list (rx.lua), so that
 * the stateful operators the script's main chunk subscribes register.
 * A stage without the module simply has no state to checkpoint. */
static void checkpoint_open(lua_State *L)
{
    int top = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "rx");
    if (lua_isfunction(L, -2) && lua_pcall(L, 1, 1, 0) == LUA_OK &&
        lua_istable(L, -1) && checkpoint_fn(L, -1, "open"))
        (void)lua_pcall(L, 0, 0, 0);
    lua_settop(L, top);
}

/* See ss_stage.h. */
int ss_stage_load(ss_stage *s, const ss_stage_opts *o, char *err,
                  size_t errlen)
{
    int rc;
    /* a script read from its file comes with the local modules it
     * requires, as in an enclave: `require 'helpers'` finds the file
     * beside the script whatever the working folder (ss_bundle.h) */
    ss_bundle *own = NULL;
    ss_stage_opts from_file;
    if (o->script_path && !o->script_src && !o->bundle) {
        rc = ss_bundle_load(o->script_path, &own, err, errlen);
        if (rc)
            return rc;
        from_file = *o;
        from_file.script_src = ss_bundle_script(own, &from_file.script_len);
        from_file.bundle = own;
        o = &from_file;
    }
    if (o->bundle) {
        register_bundle(s->L, o->bundle);
        /* the data files count against the memory cap, like the rest */
        lua_pushcfunction(s->L, add_files);
        lua_pushlightuserdata(s->L, (void *)o->bundle);
        if (lua_pcall(s->L, 1, 0, 0) != LUA_OK) {
            size_t total = 0;
            for (size_t i = 0; i < ss_bundle_nfiles(o->bundle); i++) {
                const char *name, *data;
                size_t len;
                ss_bundle_file(o->bundle, i, &name, &data, &len);
                total += len;
            }
            snprintf(err, errlen, "cannot load the script's %zu data "
                     "file(s), %zu bytes: %s (the stage's memory cap: "
                     "--mem-limit)", ss_bundle_nfiles(o->bundle), total,
                     lua_tostring(s->L, -1) ? lua_tostring(s->L, -1) : "?");
            lua_pop(s->L, 1);
            ss_bundle_destroy(&own);
            return SS_ENOMEM;
        }
    }
    if (s->host_errors) {
        checkpoint_open(s->L);
        /* the globals before the script: what the scripts of a chain
         * sharing this state fall back to (ss_lua_dostring_env) */
        lua_State *L = s->L;
        lua_newtable(L);
        lua_pushglobaltable(L);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -5);
        }
        lua_pop(L, 1);
        lua_setfield(L, LUA_REGISTRYINDEX, SS_LUA_PRISTINE);
    }
    /* a stage's main chunk only builds its chain: metered like an event
     * (not so with RxLua semantics, `sstream lua`, where the main chunk
     * is the whole program) */
    if (s->host_errors) {
        budget_begin(s);
        meter_start(s, "loading the script");
    }
    char chunk[4096 + 2];
    if (o->script_src && o->script_path) {
        /* text read already (a bundle), from this file: named like a
         * file chunk, so that messages name it and debug.getinfo's
         * source finds the script's folder */
        snprintf(chunk, sizeof chunk, "@%s", o->script_path);
    } else {
        snprintf(chunk, sizeof chunk, "=script");
    }
    rc = ss_lua_dostring(s->lua, o->script_src, o->script_len, chunk, err,
                         errlen);
    if (!rc && s->host_errors && o->script_src) {
        /* kept to run the main chunk again per key group (keyed state) */
        free(s->src);
        free(s->chunk);
        s->src = malloc(o->script_len ? o->script_len : 1);
        s->chunk = strdup(chunk);
        if (!s->src || !s->chunk) {
            snprintf(err, errlen, "out of memory");
            rc = SS_ENOMEM;
        } else {
            memcpy(s->src, o->script_src, o->script_len);
            s->src_len = o->script_len;
        }
    }
    ss_bundle_destroy(&own);
    if (s->host_errors)
        budget_end(s);
    if (rc)
        return rc;
    if (s->flush_rc) {
        snprintf(err, errlen, "output failed: %s",
                 ss_strerror(s->flush_rc));
        return s->flush_rc;
    }
    /* Rx.stateful, when the rx module was loaded; and the list of the
     * operators whose state a checkpoint holds is complete now */
    lua_State *L = s->L;
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "rx");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "stateful");
        s->stateful = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (checkpoint_fn(L, -1, "freeze")) {
            if (lua_pcall(L, 0, 0, 0) != LUA_OK)
                lua_pop(L, 1); /* a plain assignment: cannot fail */
        }
        /* the load-time instance's list, for keyed state */
        if (s->host_errors && checkpoint_fn(L, -1, "current")) {
            if (lua_pcall(L, 0, 1, 0) == LUA_OK && lua_istable(L, -1))
                s->ref_reg = luaL_ref(L, LUA_REGISTRYINDEX);
            else
                lua_pop(L, 1);
        }
    }
    lua_pop(L, 2);
    return 0;
}

/* See ss_stage.h. */
void ss_stage_destroy(ss_stage **p)
{
    if (!p || !*p)
        return;
    ss_stage *s = *p;
    if (tl_cur == s)
        tl_cur = NULL;
    ss_lua_destroy(&s->lua); /* NULL in a shared state's later stages */
    ss_stage_out_release(&s->free_out);
    free(s->insts);
    free(s->src);
    free(s->chunk);
    ss_buf_release(&s->xfer);
    free(s->from);
    free(s->to);
    free(s);
    *p = NULL;
}

const char *ss_stage_name(const ss_stage *s) { return s->stage; }
uint64_t ss_stage_max_instructions(const ss_stage *s)
{
    return s->max_insns;
}
const char *ss_stage_from(const ss_stage *s) { return s->from; }
const char *ss_stage_to(const ss_stage *s) { return s->to; }
int ss_stage_stateful(const ss_stage *s) { return s->stateful; }
int ss_stage_done_called(const ss_stage *s) { return s->done_called; }
int ss_stage_uses_sgx(const ss_stage *s) { return s->uses_sgx; }
int ss_stage_has_input(const ss_stage *s)
{
    return s->ref_subject != LUA_NOREF;
}
int ss_stage_output_done(const ss_stage *s) { return s->output_done; }
const ss_stage_counts *ss_stage_totals(const ss_stage *s)
{
    return s->head ? &s->fc : &s->totals;
}
size_t ss_stage_mem_peak(const ss_stage *s)
{
    return ss_lua_mem_peak(s->head ? s->head->lua : s->lua);
}
int ss_stage_shared(const ss_stage *s) { return s->head != NULL; }
lua_State *ss_stage_lua(ss_stage *s) { return s->L; }

/* See ss_stage.h. */
void ss_stage_counts_add(ss_stage_counts *t, const ss_stage_counts *d)
{
    t->in += d->in;
    t->passed += d->passed;
    t->dropped += d->dropped;
    t->rejected += d->rejected;
    t->out += d->out;
    t->out_bytes += d->out_bytes;
}

/* --- key groups ------------------------------------------------------------
 *
 * A stateful stage fed PARTITIONED batches (the stage is partition_by:
 * its router sends each key group to one worker) keeps its state per key
 * group, as Flink's keyed state, so that the state of a group can move to
 * another worker when the stage's worker count changes (at a checkpoint:
 * ss_stage_restore_groups). The first batch of key group g runs the
 * script's main chunk once more, for g: with a global table of its own
 * whose reads fall back to the worker's globals (what the load-time run
 * left there), its own locals, subject and operators, and its own list of
 * stateful operators (rx.lua, Rx.checkpoint.fresh). Every batch of g then
 * goes to that instance; at completion every instance completes, by
 * increasing group, then the load-time instance if it got events itself
 * (a batch not PARTITIONED) or if there is no other. Modules loaded with
 * require are loaded once per worker and shared by every instance (their
 * own state too), and so are data files. The instances share the stage's
 * Lua state, memory cap and counters. */

/* The instance of group g, or NULL. */
static ss_inst *find_inst(ss_stage *s, int g)
{
    size_t lo = 0, hi = s->ninst;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->insts[mid].group == g)
            return &s->insts[mid];
        if (s->insts[mid].group < g)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void unref_inst(lua_State *L, ss_inst *in)
{
    luaL_unref(L, LUA_REGISTRYINDEX, in->ref_subject);
    luaL_unref(L, LUA_REGISTRYINDEX, in->ref_onnext);
    luaL_unref(L, LUA_REGISTRYINDEX, in->ref_complete);
    luaL_unref(L, LUA_REGISTRYINDEX, in->ref_reg);
    luaL_unref(L, LUA_REGISTRYINDEX, in->ref_env);
}

/* Calls rx.checkpoint[fn] with the registry value ref (LUA_NOREF: no
 * argument) and leaves nres results; 0, or -1 (no such function, or it
 * raised: nothing left). */
static int call_rx_checkpoint(lua_State *L, const char *fn, int ref, int nres)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "rx");
    lua_remove(L, -2);
    if (!lua_istable(L, -1) || !checkpoint_fn(L, -1, fn)) {
        lua_pop(L, 1);
        return -1;
    }
    lua_remove(L, -2);
    int nargs = 0;
    if (ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
        nargs = 1;
    }
    if (lua_pcall(L, nargs, nres, 0) != LUA_OK) {
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

/* Makes the instance of key group g (not there yet): runs the main chunk
 * for it, metered as loading the script. Returns it, or NULL with the
 * reason in s->err (out of memory under the cap, or the main chunk
 * failed this time). Called between batches or events, never from Lua. */
static ss_inst *new_inst(ss_stage *s, int g)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);
    if (s->ninst == s->capinst) {
        size_t cap = s->capinst ? 2 * s->capinst : 16;
        ss_inst *a = realloc(s->insts, cap * sizeof *a);
        if (!a) {
            snprintf(s->err, sizeof s->err, "stage '%s': out of memory for "
                     "key group %d", s->stage, g);
            return NULL;
        }
        s->insts = a;
        s->capinst = cap;
    }
    ss_inst in = {g, LUA_NOREF, LUA_NOREF, LUA_NOREF, LUA_NOREF, LUA_NOREF};
    if (call_rx_checkpoint(L, "fresh", LUA_NOREF, 1) != 0) {
        snprintf(s->err, sizeof s->err, "stage '%s': cannot start the "
                 "operator list of key group %d", s->stage, g);
        return NULL;
    }
    in.ref_reg = luaL_ref(L, LUA_REGISTRYINDEX);
    /* its globals: its own, reads fall back to the worker's */
    lua_createtable(L, 0, 4);
    lua_createtable(L, 0, 1);
    lua_pushglobaltable(L);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    in.ref_env = luaL_ref(L, LUA_REGISTRYINDEX);
    s->loading_inst = &in;
    budget_begin(s);
    meter_start(s, "loading the script for a key group");
    char why[400];
    int rc = ss_lua_dostring_in(L, s->src ? s->src : "", s->src_len,
                                s->chunk ? s->chunk : "=script", -1, why,
                                sizeof why);
    budget_end(s);
    s->loading_inst = NULL;
    (void)call_rx_checkpoint(L, "close", LUA_NOREF, 0);
    lua_settop(L, top);
    if (!rc && in.ref_subject == LUA_NOREF) {
        snprintf(why, sizeof why, "it opened no input (fromZmqSocket) "
                 "this time");
        rc = SS_EINVAL;
    }
    if (rc) {
        snprintf(s->err, sizeof s->err, "stage '%s': cannot start the "
                 "instance of key group %d: %.300s", s->stage, g, why);
        unref_inst(L, &in);
        return NULL;
    }
    size_t i = s->ninst;
    while (i > 0 && s->insts[i - 1].group > g) {
        s->insts[i] = s->insts[i - 1];
        i--;
    }
    s->insts[i] = in;
    s->ninst++;
    return &s->insts[i];
}

/* 1 if batches of s are to go to key group instances: a stateful stage
 * of its own Lua state, run by a host, whose script can run again. */
static int keyed_ok(const ss_stage *s)
{
    return s->stateful && s->host_errors && !s->head && !s->next &&
           s->src && s->ref_reg != LUA_NOREF &&
           s->ref_subject != LUA_NOREF;
}

/* See ss_stage.h. */
size_t ss_stage_key_groups(const ss_stage *s) { return s->ninst; }

/* See ss_stage.h. */
int ss_stage_key_group(const ss_stage *s, size_t i)
{
    return i < s->ninst ? s->insts[i].group : -1;
}

/* --- processing ---------------------------------------------------------- */

/* Pushes the events of the batch, from s->index on, through the chain.
 * Runs under one lua_pcall for the whole batch: an error (from the user's
 * functions, an unsendable value, or running out of Lua memory while
 * decoding) unwinds to ss_stage_process, which rejects that one event,
 * rolls its output back and calls us again for the rest. A malformed
 * encoding is not raised: it sets s->malformed and returns. */
static int batch_step(lua_State *L)
{
    ss_stage *s = lua_touserdata(L, 1);
    ss_stage_out *out = s->cur;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->act_onnext);  /* 2 */
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->act_subject); /* 3 */
    while (s->index < s->count) {
        s->ev_start = s->off;
        s->ev_mark = out->events.len;
        s->ev_cnt = out->count;
        s->ev_outs = out->delta.out;
        s->decoded = 0;
        s->ev_pmark = s->npend;
        s->at = s;
        meter_start(s, "an event");
        lua_pushvalue(L, 2);
        lua_pushvalue(L, 3);
        if (ss_mp_decode_lua(L, s->payload, s->len, &s->off, s->err,
                             sizeof s->err) != 0) {
            s->malformed = 1;
            return 0;
        }
        s->decoded = 1;
        lua_call(L, 2, 0);
        meter_stop(s);
        out->delta.in++;
        if (s->next ? out->delta.out > s->ev_outs : out->count > s->ev_cnt)
            out->delta.passed++;
        else
            out->delta.dropped++;
        s->index++;
        if (s->next && !s->by_batch)
            drain(s, s); /* the event succeeded: on to the next stage */
    }
    return 0;
}

/* Rejects the events i..count-1 of a batch whose encoding is broken. */
static void reject_rest(ss_stage *s, ss_stage_out *out, uint32_t i,
                        uint32_t count)
{
    uint32_t rest = count - i;
    char why[640];
    snprintf(why, sizeof why,
             "malformed event encoding: %s (%u events of the batch "
             "rejected)", s->err, rest);
    add_reject(s, out, rest, why, NULL, 0);
    out->delta.in += rest;
}

/* Counts, as rejected, what a batch holds after its `count` events
 * (they used to be dropped uncounted): each whole MessagePack value there
 * is one rejected event, and bytes that are not one, one more. */
static void reject_trailing(ss_stage *s, ss_stage_out *out,
                            const char *payload, size_t len)
{
    size_t off = s->off, bytes = len - s->off;
    uint32_t k = 0;
    while (off < len && k < UINT32_MAX - 1 &&
           ss_mp_skip(payload, len, &off) == 0)
        k++;
    if (off < len)
        k++; /* the undecodable rest */
    char why[200];
    snprintf(why, sizeof why,
             "the batch declares %u events but its payload holds %zu more "
             "bytes after them (%u more event%s, not declared: rejected)",
             s->count, bytes, k, k == 1 ? "" : "s");
    add_reject(s, out, k, why, NULL, 0);
    out->delta.in += k;
}

/* See ss_stage.h. */
void ss_stage_reject_batch(ss_stage *s, const ss_hdr *hdr,
                           const char *reason, ss_stage_out *out)
{
    ss_stage_counts d = {.in = hdr->count, .rejected = hdr->count};
    s->started = 1;
    s->hdr = hdr;
    s->index = 0;
    if (hdr->count)
        add_reject(s, out, hdr->count, reason, NULL, 0);
    out->delta.in += hdr->count;
    ss_stage_counts_add(&s->totals, &d);
    s->hdr = NULL;
}

/* See ss_stage.h. */
int ss_stage_process(ss_stage *s, const ss_hdr *hdr, const char *payload,
                     size_t len, ss_stage_out *out)
{
    lua_State *L = s->L;
    ss_stage_counts before = out->delta;
    size_t bytes_before = out->events.len;
    s->started = 1;
    s->hdr = hdr;
    s->index = 0;
    if (s->ref_subject == LUA_NOREF) {
        add_reject(s, out, hdr->count,
                   "stage script has no input (no fromZmqSocket)", NULL, 0);
        out->delta.in += hdr->count;
        goto done;
    }
    s->act_subject = s->ref_subject;
    s->act_onnext = s->ref_onnext;
    if (hdr->count && (hdr->flags & SS_BF_PARTITIONED) &&
        hdr->partition < SS_PARTITIONS && keyed_ok(s)) {
        ss_inst *in = find_inst(s, hdr->partition);
        if (!in)
            in = new_inst(s, hdr->partition);
        if (!in) { /* its main chunk failed: the batch cannot run */
            add_reject(s, out, hdr->count, s->err, NULL, 0);
            out->delta.in += hdr->count;
            goto done;
        }
        s->act_subject = in->ref_subject;
        s->act_onnext = in->ref_onnext;
    } else if (hdr->count) {
        s->base_used = 1;
    }
    s->cur = out;
    s->payload = payload;
    s->len = len;
    s->off = 0;
    s->count = hdr->count;
    s->malformed = 0;
    for (ss_stage *t = s->next; t; t = t->next)
        t->in_index = 0;
    int top = lua_gettop(L);
    /* an empty batch runs no Lua (no event; a chain's later stages have
     * nothing kept from it either): no CPU timer to arm and disarm, two
     * system calls per batch saved where every batch is empty (a sink
     * after a reduce: its per-batch empty batches) */
    int timed_batch = s->count > 0 || s->next;
    if (timed_batch)
        budget_begin(s);
    while (s->index < s->count) {
        lua_pushcfunction(L, batch_step);
        lua_pushlightuserdata(L, s);
        int st = lua_pcall(L, 1, 0, 0);
        meter_stop(s);
        s->running = NULL;
        if (st == LUA_OK) {
            lua_settop(L, top);
            if (s->malformed)
                reject_rest(s, out, s->index, s->count);
            break;
        }
        /* event s->index failed: roll back its output, reject it */
        const char *m = lua_tostring(L, -1);
        snprintf(s->err, sizeof s->err, "%s",
                 m ? m : "(error object is not a string)");
        lua_settop(L, top);
        /* Lua 5.4 collects in an emergency before it reports ERRMEM;
         * LuaJIT does not, so the failed event's garbage would still
         * fill the cap for the next event: collect it now. */
        if (st == LUA_ERRMEM)
            lua_gc(L, LUA_GCCOLLECT, 0);
        out->events.len = s->ev_mark;
        out->count = s->ev_cnt;
        out->delta.out = s->ev_outs;
        if (!s->decoded) {
            /* failed while decoding (out of memory): find where the
             * next event starts without a Lua state */
            s->off = s->ev_start;
            if (ss_mp_skip(payload, len, &s->off) != 0) {
                reject_rest(s, out, s->index, s->count);
                break;
            }
        }
        out->delta.in++;
        /* what the event emitted before it failed is not handed on (the
         * later stages run only once it succeeded: drain) */
        if (s->next)
            unkeep(L, s, s->ev_pmark);
        add_reject(s, out, 1, s->err, payload + s->ev_start,
                   s->off - s->ev_start);
        s->at = s;
        s->index++;
    }
    if (!s->malformed && s->index == s->count && s->off < len)
        reject_trailing(s, out, payload, len);
    /* per batch: every stage takes all the values of the stage before,
     * in order, as separate stages do with their batches */
    for (ss_stage *t = s; t && t->next && s->by_batch; t = t->next)
        drain(s, t);
    if (timed_batch)
        budget_end(s);
    s->cur = NULL;
done:
    if (!s->next) /* shared state: the bytes are the last stage's */
        out->delta.out_bytes += out->events.len - bytes_before;
    {
        ss_stage_counts d = out->delta;
        d.in -= before.in;
        d.passed -= before.passed;
        d.dropped -= before.dropped;
        d.rejected -= before.rejected;
        d.out -= before.out;
        d.out_bytes -= before.out_bytes;
        ss_stage_counts_add(&s->totals, &d);
    }
    s->hdr = NULL;
    return 0;
}

/* See ss_stage.h. */
void ss_stage_set_tick(ss_stage *s, ss_stage_tick_fn fn, void *arg)
{
    s->tick = fn;
    s->tick_arg = arg;
}

/* Completes the instance whose subject and onCompleted are the
 * registry values subject and complete (see ss_stage_complete). */
static int complete_one(ss_stage *s, int subject, int complete,
                        ss_stage_out *out)
{
    ss_stage *h = s->head ? s->head : s; /* the state's owner: buffers,
                                            budget */
    lua_State *L = s->L;
    size_t bytes_before = out->events.len;
    uint64_t outs = out->delta.out;
    /* a shared state's completion: what the stages emit now is handed on
     * as one batch per stage, without lineage (as ss_chain does between
     * separate stages), so that a reject's index counts from the first
     * value that stage takes after the head completed */
    static const ss_hdr no_lineage;
    if (s->next && !s->head)
        for (ss_stage *t = s->next; t; t = t->next)
            t->in_index = 0;
    h->started = 1;
    h->cur = out;
    h->hdr = s->next || s->head ? &no_lineage : NULL;
    h->at = s;
    lua_pushcfunction(L, ss_lua_traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, complete);
    lua_rawgeti(L, LUA_REGISTRYINDEX, subject);
    budget_begin(h);
    meter_start(h, "the completion");
    int rc = lua_pcall(L, 1, 0, -3);
    meter_stop(h);
    if (s->next) {
        if (rc == LUA_OK) /* on through the rest (stage s completed) */
            drain(h, s);
        else /* its emits are lost with the failed completion */
            unkeep(L, s, 0);
    }
    budget_end(h);
    h->cur = NULL;
    h->hdr = NULL;
    h->at = h;
    if (rc != LUA_OK) {
        /* the message is the first line; the traceback is for debugging
         * (LOG_LEVEL=debug), and the caller reports the message once */
        const char *m = lua_tostring(L, -1);
        if (!m)
            m = "?";
        size_t n = strcspn(m, "\n");
        snprintf(s->err, sizeof s->err, "%.*s", (int)n, m);
        /* inside an enclave the log is the host's: the reason may quote
         * data, so it stays in s->err for the caller to seal */
        if (!s->in_enclave && m[n])
            ss_debug("completion of stage '%s' failed: %s", s->stage, m);
        lua_pop(L, 2);
        return SS_ELUA;
    }
    lua_pop(L, 1);
    if (s->head) /* a later stage of a shared state: its own counters */
        return 0;
    s->totals.out += out->delta.out - outs;
    if (!s->next) { /* shared state: the bytes are the last stage's */
        out->delta.out_bytes += out->events.len - bytes_before;
        s->totals.out_bytes += out->events.len - bytes_before;
    }
    return 0;
}

/* See ss_stage.h. */
int ss_stage_complete(ss_stage *s, ss_stage_out *out)
{
    if (s->ref_subject == LUA_NOREF)
        return 0;
    /* every key group's instance, by increasing group (keyed state) */
    for (size_t i = 0; i < s->ninst; i++) {
        int rc = complete_one(s, s->insts[i].ref_subject,
                              s->insts[i].ref_complete, out);
        if (rc)
            return rc;
    }
    if (s->ninst && !s->base_used)
        return 0;
    return complete_one(s, s->ref_subject, s->ref_complete, out);
}

/* See ss_stage.h. */
const char *ss_stage_error(const ss_stage *s) { return s->err; }

/* --- checkpoints ----------------------------------------------------------
 *
 * The operators' get and set functions live in rx.lua (Rx.checkpoint);
 * here we call them under lua_pcall, metered like an event, and turn the
 * list into canonical MessagePack and back. */

static void world_enter(lua_State *L, const ss_stage *t);
static void world_leave(lua_State *L, int base);

typedef struct snap_ctx {
    ss_stage *s;
    ss_buf *out;       /* snapshot: where the bytes go */
    const char *data;  /* restore: the bytes */
    size_t len;
    int rc;            /* an error found without raising */
    char why[640];
    /* restore: what to take (ss_stage_restore_groups), the decoded
     * value's registry ref, its version and base_used flag, and the key
     * groups it holds that are to be restored (by increasing group) */
    const ss_stage_groups *sel;
    int ref_val, version, base_used;
    int *groups;
    size_t ngroups;
} snap_ctx;

/* Pushes package.loaded.rx.checkpoint[fn] and returns 1, or returns 0
 * with nothing pushed (no rx module, or not ours). */
static int rx_checkpoint_fn(lua_State *L, const char *fn)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "rx");
    int have = lua_istable(L, -1) && checkpoint_fn(L, -1, fn);
    if (have) {
        lua_insert(L, -3);
        lua_pop(L, 2);
        return 1;
    }
    lua_pop(L, 2);
    return 0;
}

/* Encodes [[name, state], ...] of the operator list in use
 * (rx.checkpoint.capture()) into x->out; group is the key group for the
 * messages (-1: the load-time instance). Raises on a broken list. */
static int encode_list(lua_State *L, snap_ctx *x, int group)
{
    ss_buf *b = x->out;
    lua_Integer n = 0;
    int list = 0;
    if (rx_checkpoint_fn(L, "capture")) {
        lua_call(L, 0, 1);
        if (!lua_istable(L, -1))
            return luaL_error(L, "rx.checkpoint.capture() returned a %s, "
                                 "not a list", luaL_typename(L, -1));
        list = lua_gettop(L);
        n = (lua_Integer)lua_rawlen(L, list);
    }
    char where[48] = "";
    if (group >= 0)
        snprintf(where, sizeof where, " of key group %d", group);
    int rc = ss_mp_put_array(b, (uint32_t)n);
    for (lua_Integer i = 1; !rc && i <= n; i++) {
        lua_rawgeti(L, list, i);
        int e = lua_gettop(L);
        lua_rawgeti(L, e, 1);
        lua_rawgeti(L, e, 2);
        size_t nl = 0;
        const char *name = lua_tolstring(L, e + 1, &nl);
        if (!lua_istable(L, e) || !name)
            return luaL_error(L, "rx.checkpoint.capture(): entry %d is not "
                                 "{name, state}", (int)i);
        char root[80];
        snprintf(root, sizeof root, "%s", name);
        rc = ss_mp_put_array(b, 2);
        if (!rc)
            rc = ss_mp_put_str(b, name, nl);
        char why[400] = "";
        if (!rc)
            rc = ss_lua_canon_encode(L, e + 2, b, root, why, sizeof why);
        if (rc == SS_EENCODE && x->s->in_enclave) {
            /* the path may hold keys taken from the data, and the
             * reason leaves the enclave in clear: the kind of value and
             * the operator only */
            char *at = strstr(why, " (at ");
            if (at)
                snprintf(at, sizeof why - (size_t)(at - why),
                         " (its place is not told outside the enclave)");
        }
        if (rc == SS_EENCODE)
            snprintf(x->why, sizeof x->why,
                     "stage '%s': cannot checkpoint the state of operator "
                     "%d of %d (%s)%s: %.300s", x->s->stage, (int)i, (int)n,
                     root, where, why);
        if (!rc && b->len > SS_STAGE_SNAPSHOT_MAX) {
            rc = SS_ETOOBIG;
            snprintf(x->why, sizeof x->why,
                     "stage '%s': the snapshot is larger than %zu MiB (at "
                     "operator %d of %d, %s%s)", x->s->stage,
                     SS_STAGE_SNAPSHOT_MAX >> 20, (int)i, (int)n, root,
                     where);
        }
        lua_settop(L, e - 1);
    }
    if (list)
        lua_settop(L, list - 1);
    return rc;
}

/* Makes the operator list of registry value ref the one rx.checkpoint
 * works on (nothing when ref is LUA_NOREF: no rx module of ours). */
static void select_list(lua_State *L, int ref)
{
    if (ref == LUA_NOREF || !rx_checkpoint_fn(L, "select"))
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_call(L, 1, 0);
}

/* lua_pcall'ed: the canonical encoding of
 * [version, base_used, [[name, state], ...], [[group, [[name, state],
 * ...]], ...]] into x->out (see ss_stage.h). */
static int snapshot_step(lua_State *L)
{
    snap_ctx *x = lua_touserdata(L, 1);
    ss_stage *s = x->s;
    ss_buf *b = x->out;
    int rc = ss_mp_put_array(b, 4);
    if (!rc)
        rc = ss_mp_put_int(b, SS_STAGE_SNAPSHOT_VERSION);
    if (!rc)
        rc = ss_mp_put_bool(b, s->base_used);
    select_list(L, s->ref_reg);
    if (!rc)
        rc = encode_list(L, x, -1);
    if (!rc)
        rc = ss_mp_put_array(b, (uint32_t)s->ninst);
    for (size_t i = 0; !rc && i < s->ninst; i++) {
        rc = ss_mp_put_array(b, 2);
        if (!rc)
            rc = ss_mp_put_int(b, s->insts[i].group);
        select_list(L, s->insts[i].ref_reg);
        if (!rc)
            rc = encode_list(L, x, s->insts[i].group);
    }
    select_list(L, s->ref_reg);
    if (rc == SS_ENOMEM && !x->why[0])
        snprintf(x->why, sizeof x->why, "stage '%s': out of memory for the "
                 "snapshot", s->stage);
    x->rc = rc;
    return 0;
}

/* Runs fn(L) with x under lua_pcall, metered as `what`; fills err. */
static int run_checkpoint(ss_stage *s, lua_CFunction fn, snap_ctx *x,
                          const char *what, char *err, size_t errlen)
{
    lua_State *L = s->L;
    ss_stage *h = s->head ? s->head : s; /* the state's owner: budget */
    int top = lua_gettop(L);
    if (s->head) /* a later stage of a shared state: its own rx */
        world_enter(L, s);
    budget_begin(h);
    h->at = s;
    meter_start(h, what);
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, x);
    int st = lua_pcall(L, 1, 0, 0);
    budget_end(h);
    h->at = h;
    if (st != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        snprintf(x->why, sizeof x->why, "stage '%s': %s failed: %s",
                 s->stage, what, m ? m : "(error object is not a string)");
        x->rc = SS_ELUA;
        if (st == LUA_ERRMEM)
            lua_gc(L, LUA_GCCOLLECT, 0);
    }
    if (s->head)
        world_leave(L, top + 1);
    lua_settop(L, top);
    if (x->rc)
        snprintf(err, errlen, "%s", x->why);
    return x->rc;
}

/* See ss_stage.h. */
int ss_stage_snapshot(ss_stage *s, ss_buf *out, char *err, size_t errlen)
{
    if ((s->head ? s->head : s)->cur) {
        snprintf(err, errlen, "stage '%s': a snapshot is taken between "
                 "events, not while one runs", s->stage);
        return SS_EINVAL;
    }
    size_t mark = out->len;
    snap_ctx x;
    memset(&x, 0, sizeof x);
    x.s = s;
    x.out = out;
    int rc = run_checkpoint(s, snapshot_step, &x, "taking a snapshot", err,
                            errlen);
    if (rc) {
        out->len = mark;
        if (out->data)
            out->data[mark] = '\0';
    }
    return rc;
}

/* Hands list (a stack index) to rx.checkpoint.restore() of the operator
 * list of registry value reg; raises when it does not fit. */
static void restore_list(lua_State *L, int reg, int list)
{
    list = lua_absindex(L, list);
    select_list(L, reg);
    if (rx_checkpoint_fn(L, "restore")) {
        lua_pushvalue(L, list);
        lua_call(L, 1, 0);
        return;
    }
    size_t n = lua_istable(L, list) ? lua_rawlen(L, list) : 0;
    if (n)
        luaL_error(L, "snapshot: it holds the state of %d operator(s) but "
                      "the script uses no Rx operators: not a snapshot of "
                      "this script", (int)n);
}

/* Sets x's error (SS_EDECODE: not a snapshot) and returns 0. */
static int not_snapshot(snap_ctx *x, const char *fmt, int a, int b)
{
    char what[200];
    snprintf(what, sizeof what, fmt, a, b);
    x->rc = SS_EDECODE;
    snprintf(x->why, sizeof x->why, "stage '%s': not a snapshot: %s",
             x->s->stage, what);
    return 0;
}

/* lua_pcall'ed: decodes x->data, checks its shape and which key groups
 * of it are to be restored (x->groups), and keeps the value (x->ref_val)
 * for restore_apply. */
static int restore_decode(lua_State *L)
{
    snap_ctx *x = lua_touserdata(L, 1);
    const char *stage = x->s->stage;
    const ss_stage_groups *sel = x->sel;
    size_t off = 0;
    char why[256] = "";
    if (ss_mp_decode_lua(L, x->data, x->len, &off, why, sizeof why) != 0) {
        x->rc = SS_EDECODE;
        snprintf(x->why, sizeof x->why, "stage '%s': not a snapshot: %s",
                 stage, why);
        return 0;
    }
    if (off != x->len) {
        x->rc = SS_EDECODE;
        snprintf(x->why, sizeof x->why, "stage '%s': not a snapshot: %zu "
                 "bytes after its value (at offset %zu)", stage,
                 x->len - off, off);
        return 0;
    }
    int v = lua_gettop(L);
    int version = 0;
    if (lua_istable(L, v)) {
        lua_rawgeti(L, v, 1);
        version = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
        lua_pop(L, 1);
    }
    int ok = version == 1 || version == SS_STAGE_SNAPSHOT_VERSION;
    if (ok && version == 1) { /* [1, list]: the load-time instance only */
        lua_rawgeti(L, v, 2);
        ok = lua_istable(L, -1) && lua_rawlen(L, v) == 2;
        lua_pop(L, 1);
    } else if (ok) { /* [2, base_used, list, [[group, list], ...]] */
        lua_rawgeti(L, v, 2);
        lua_rawgeti(L, v, 3);
        lua_rawgeti(L, v, 4);
        ok = lua_isboolean(L, -3) && lua_istable(L, -2) &&
             lua_istable(L, -1) && lua_rawlen(L, v) == 4;
        x->base_used = lua_toboolean(L, -3);
        lua_pop(L, 3);
    }
    if (!ok) {
        x->rc = SS_EDECODE;
        snprintf(x->why, sizeof x->why, "stage '%s': not a snapshot of "
                 "version %d ([%d, base_used, [[name, state], ...], "
                 "[[key group, [[name, state], ...]], ...]]) or 1", stage,
                 SS_STAGE_SNAPSHOT_VERSION, SS_STAGE_SNAPSHOT_VERSION);
        return 0;
    }
    x->version = version;
    if (!sel->base && x->base_used) {
        x->rc = SS_EDENIED;
        snprintf(x->why, sizeof x->why, "stage '%s': the snapshot holds "
                 "state of events that came in no key group (batches not "
                 "PARTITIONED): it cannot move to another worker", stage);
        return 0;
    }
    if (version == 2) {
        lua_rawgeti(L, v, 4);
        int t = lua_gettop(L);
        size_t n = lua_rawlen(L, t);
        if (n > SS_PARTITIONS)
            return not_snapshot(x, "%d key groups (at most %d)", (int)n,
                                SS_PARTITIONS);
        x->groups = calloc(n ? n : 1, sizeof *x->groups);
        if (!x->groups)
            return luaL_error(L, "out of memory");
        int last = -1;
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, t, (lua_Integer)i);
            int e = lua_gettop(L);
            ok = lua_istable(L, e) && lua_rawlen(L, e) == 2;
            lua_Integer g = -1;
            if (ok) { /* never index what is not a table */
                lua_rawgeti(L, e, 1);
                lua_rawgeti(L, e, 2);
                ok = lua_isinteger(L, -2) && lua_istable(L, -1);
                g = ok ? lua_tointeger(L, -2) : -1;
            }
            lua_settop(L, e - 1);
            if (!ok || g < 0 || g >= SS_PARTITIONS || g <= last)
                return not_snapshot(x, "entry %d of its key groups is not "
                                    "[key group, list] by increasing key "
                                    "group below %d", (int)i,
                                    SS_PARTITIONS);
            last = (int)g;
            if (g < sel->own_lo || g > sel->own_hi) {
                x->rc = SS_EDENIED;
                snprintf(x->why, sizeof x->why, "stage '%s': the snapshot "
                         "holds key group %d, which its worker did not own "
                         "(key groups %d..%d): refused", stage, (int)g,
                         sel->own_lo, sel->own_hi);
                return 0;
            }
            if (g < sel->lo || g > sel->hi)
                continue;
            if (find_inst(x->s, (int)g)) {
                x->rc = SS_EDENIED;
                snprintf(x->why, sizeof x->why, "stage '%s': key group %d "
                         "is restored twice (it is in two snapshots)",
                         stage, (int)g);
                return 0;
            }
            x->groups[x->ngroups++] = (int)g;
        }
        lua_settop(L, t - 1);
    }
    lua_pushvalue(L, v);
    x->ref_val = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* lua_pcall'ed: hands each part of the value restore_decode kept to its
 * instance's operators (the instances of x->groups exist now). */
static int restore_apply(lua_State *L)
{
    snap_ctx *x = lua_touserdata(L, 1);
    ss_stage *s = x->s;
    lua_rawgeti(L, LUA_REGISTRYINDEX, x->ref_val);
    int v = lua_gettop(L);
    if (x->sel->base) {
        lua_rawgeti(L, v, x->version == 1 ? 2 : 3);
        restore_list(L, s->ref_reg, -1);
        lua_pop(L, 1);
        s->base_used = s->base_used || x->base_used;
        s->base_restored = 1;
    }
    if (x->version == 2) {
        lua_rawgeti(L, v, 4);
        int t = lua_gettop(L);
        size_t n = lua_rawlen(L, t);
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, t, (lua_Integer)i);
            lua_rawgeti(L, -1, 1);
            ss_inst *in = find_inst(s, (int)lua_tointeger(L, -1));
            lua_pop(L, 1);
            int g = in ? in->group : -1;
            size_t k = 0;
            while (k < x->ngroups && x->groups[k] != g)
                k++;
            if (in && k < x->ngroups) {
                lua_rawgeti(L, -1, 2);
                restore_list(L, in->ref_reg, -1);
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
    }
    select_list(L, s->ref_reg);
    return 0;
}

/* See ss_stage.h. */
int ss_stage_restore_groups(ss_stage *s, const char *data, size_t len,
                            const ss_stage_groups *sel, char *err,
                            size_t errlen)
{
    const ss_stage *h = s->head ? s->head : s;
    if (h->cur || h->started) {
        snprintf(err, errlen, "stage '%s': a snapshot is restored before "
                 "the first event, and this stage has processed events",
                 s->stage);
        return SS_EINVAL;
    }
    if (sel->base && s->base_restored) {
        snprintf(err, errlen, "stage '%s': the state outside key groups is "
                 "restored once", s->stage);
        return SS_EINVAL;
    }
    snap_ctx x;
    memset(&x, 0, sizeof x);
    x.s = s;
    x.data = data ? data : "";
    x.len = data ? len : 0;
    x.sel = sel;
    x.ref_val = LUA_NOREF;
    int rc = run_checkpoint(s, restore_decode, &x, "restoring a snapshot",
                            err, errlen);
    if (!rc && x.ngroups && !keyed_ok(s)) {
        snprintf(err, errlen, "stage '%s': the snapshot holds the state of "
                 "%zu key group(s), but this stage keeps no state per key "
                 "group: not a snapshot of this script", s->stage,
                 x.ngroups);
        rc = SS_ELUA;
    }
    for (size_t i = 0; !rc && i < x.ngroups; i++)
        if (!new_inst(s, x.groups[i])) {
            snprintf(err, errlen, "%s", s->err);
            rc = SS_ELUA;
        }
    if (!rc) {
        x.rc = 0;
        rc = run_checkpoint(s, restore_apply, &x, "restoring a snapshot",
                            err, errlen);
    }
    luaL_unref(s->L, LUA_REGISTRYINDEX, x.ref_val);
    free(x.groups);
    return rc;
}

/* See ss_stage.h. */
int ss_stage_restore(ss_stage *s, const char *data, size_t len, char *err,
                     size_t errlen)
{
    ss_stage_groups all = {1, 0, SS_PARTITIONS - 1, 0, SS_PARTITIONS - 1};
    return ss_stage_restore_groups(s, data, len, &all, err, errlen);
}

/* --- a chain sharing one Lua state -------------------------------------
 *
 * The later stages of a chain run in the first stage's (the head's) Lua
 * state, each as it would in a state of its own:
 * - globals: each script has a global table of its own (ss_lua_push_env),
 *   whose reads fall back to the globals before any script ran;
 * - modules: each has its own package.loaded, package.preload (the
 *   built-ins and its own local modules, whose globals are the script's)
 *   and data files (the `files` module), its "world": require'ing rx
 *   gives each stage its own rx module, so its own list of stateful
 *   operators (a snapshot per stage) and its own Rx.stateful. The
 *   registry's tables are switched to the stage's while its script
 *   loads, while a checkpoint runs, and inside the script's `require`
 *   (world_require), never per event;
 * - events: what stage k emits is kept in a Lua array until the event
 *   succeeded in stage k; once stage k has taken the whole batch, each
 *   value runs through stage k+1 under its own protection and
 *   instruction budget (keep, drain): one lua_pcall per stage and batch,
 *   again after a value that failed, as the head does with its events;
 *   the same order, outputs, counts and rejects as separate stages;
 * - memory: one allocator, whose cap is the sum of the stages' caps. */

/* Makes the registry's module tables (and package.loaded/.preload, which
 * LuaJIT's preload searcher reads) the ones at the stack indexes. */
static void world_set(lua_State *L, int loaded, int preload, int files)
{
    loaded = lua_absindex(L, loaded);
    preload = lua_absindex(L, preload);
    files = lua_absindex(L, files);
    lua_pushvalue(L, loaded);
    lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, preload);
    lua_setfield(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushlightuserdata(L, (void *)ss_lua_files_key());
    lua_pushvalue(L, files);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_getfield(L, loaded, "package");
    if (lua_istable(L, -1)) {
        lua_pushvalue(L, loaded);
        lua_setfield(L, -2, "loaded");
        lua_pushvalue(L, preload);
        lua_setfield(L, -2, "preload");
    }
    lua_pop(L, 1);
}

/* Enters t's world: pushes the current three tables (world_leave puts
 * them back) and sets t's. */
static void world_enter(lua_State *L, const ss_stage *t)
{
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushlightuserdata(L, (void *)ss_lua_files_key());
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref_loaded);
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref_preload);
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref_files);
    world_set(L, -3, -2, -1);
    lua_pop(L, 3);
}

/* Leaves a world entered with the three saved tables at base..base+2
 * (removed). */
static void world_leave(lua_State *L, int base)
{
    base = lua_absindex(L, base);
    world_set(L, base, base + 1, base + 2);
    lua_remove(L, base + 2);
    lua_remove(L, base + 1);
    lua_remove(L, base);
}

/* A later stage's `require` (upvalues: the stage, the state's require):
 * its own package.loaded first; else the state's require inside the
 * stage's world. */
static int world_require(lua_State *L)
{
    const ss_stage *t = lua_touserdata(L, lua_upvalueindex(1));
    luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ref_loaded);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1))
        return 1;
    lua_settop(L, 1);
    world_enter(L, t); /* 2, 3, 4 */
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushvalue(L, 1);
    int rc = lua_pcall(L, 1, 1, 0);
    lua_insert(L, 2); /* the module or the error, below the saved */
    world_leave(L, 3);
    if (rc != LUA_OK)
        return lua_error(L);
    return 1;
}

/* See ss_stage.h. */
int ss_stage_new_shared(ss_stage *head, const ss_stage_opts *o,
                        ss_stage **out, char *err, size_t errlen)
{
    *out = NULL;
    if (head->head || !head->host_errors) {
        snprintf(err, errlen, "a shared Lua state is a stage's own, with "
                              "host errors");
        return SS_EINVAL;
    }
    ss_bundle *own = NULL;
    const char *src = o->script_src;
    size_t slen = o->script_len;
    const ss_bundle *b = o->bundle;
    if (o->script_path && !src && !b) {
        int rc = ss_bundle_load(o->script_path, &own, err, errlen);
        if (rc)
            return rc;
        b = own;
    }
    if (b)
        src = ss_bundle_script(b, &slen);
    ss_stage *t = calloc(1, sizeof *t);
    if (!t) {
        ss_bundle_destroy(&own);
        return SS_ENOMEM;
    }
    t->ref_subject = t->ref_onnext = t->ref_complete = LUA_NOREF;
    t->pend_ref = LUA_NOREF;
    t->ref_reg = LUA_NOREF;
    snprintf(t->name, sizeof t->name, "%s", o->name ? o->name : "worker");
    snprintf(t->stage, sizeof t->stage, "%s", o->stage ? o->stage : "");
    t->head = head;
    t->L = head->L;
    t->in_enclave = head->in_enclave;
    t->rejects_sealed = head->rejects_sealed;
    t->host_errors = 1;
    t->max_insns = o->max_instructions ? o->max_instructions
                                       : SS_STAGE_DEFAULT_MAX_INSTRUCTIONS;
    t->timed = head->timed;
    ss_stage_out_init(&t->free_out);
    ss_buf_init(&t->xfer);
    lua_State *L = head->L;
    /* one allocator: its cap grows by this stage's */
    size_t cap = ss_lua_mem_limit(head->lua);
    if (cap && o->mem_limit)
        ss_lua_set_mem_limit(head->lua, cap + o->mem_limit);
    else if (cap)
        ss_lua_set_mem_limit(head->lua, 0);
    int top = lua_gettop(L);
    /* t's world: the modules before any script, its own local ones */
    lua_getfield(L, LUA_REGISTRYINDEX, PRISTINE_LOADED);
    push_copy(L, -1);
    t->ref_loaded = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, LUA_REGISTRYINDEX, PRISTINE_PRELOAD);
    push_copy(L, -1);
    int preload = lua_gettop(L);
    ss_lua_push_env(L);
    int env = lua_gettop(L);
    lua_pushlightuserdata(L, t);
    lua_getglobal(L, "require");
    lua_pushcclosure(L, world_require, 2);
    lua_setfield(L, env, "require");
    if (b)
        register_bundle_in(L, preload, b, env);
    lua_pushvalue(L, preload);
    t->ref_preload = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    t->ref_files = luaL_ref(L, LUA_REGISTRYINDEX);
    world_enter(L, t);
    int saved = lua_gettop(L) - 2;
    int rc = 0;
    if (b && ss_bundle_nfiles(b)) {
        lua_pushcfunction(L, add_files);
        lua_pushlightuserdata(L, (void *)b);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
            snprintf(err, errlen, "stage '%s': cannot load the script's %zu "
                     "data file(s): %s (the memory cap: --mem-limit)",
                     t->stage, ss_bundle_nfiles(b),
                     lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
            lua_pop(L, 1);
            rc = SS_ENOMEM;
        }
    }
    char chunk[4096 + 2];
    if (o->script_path)
        snprintf(chunk, sizeof chunk, "@%s", o->script_path);
    else
        snprintf(chunk, sizeof chunk, "=script");
    head->loading = t;
    if (!rc) {
        checkpoint_open(L); /* t's own rx */
        budget_begin(head);
        head->at = t;
        meter_start(head, "loading the script");
        rc = ss_lua_dostring_in(L, src ? src : "", slen, chunk, env, err,
                                errlen);
        budget_end(head);
        head->at = head;
    }
    head->loading = NULL;
    ss_bundle_destroy(&own);
    if (!rc && (t->ref_subject == LUA_NOREF || !t->to)) {
        snprintf(err, errlen, "stage '%s': a chained stage's script must "
                 "start with fromZmqSocket(...) and end with "
                 ":subscribeToSocket(...), as any stage", t->stage);
        rc = SS_EINVAL;
    }
    if (!rc) { /* t's Rx.stateful; its list of operators is complete */
        lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
        lua_getfield(L, -1, "rx");
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "stateful");
            t->stateful = lua_toboolean(L, -1);
            lua_pop(L, 1);
            if (checkpoint_fn(L, -1, "freeze") &&
                lua_pcall(L, 0, 0, 0) != LUA_OK)
                lua_pop(L, 1);
            /* its list of stateful operators (snapshots select it) */
            if (checkpoint_fn(L, -1, "current")) {
                if (lua_pcall(L, 0, 1, 0) == LUA_OK && lua_istable(L, -1))
                    t->ref_reg = luaL_ref(L, LUA_REGISTRYINDEX);
                else
                    lua_pop(L, 1);
            }
        }
        lua_pop(L, 2);
    }
    world_leave(L, saved);
    lua_settop(L, top);
    if (rc) {
        ss_stage_destroy(&t);
        return rc;
    }
    ss_stage *tail = head;
    while (tail->next)
        tail = tail->next;
    lua_newtable(L); /* what tail keeps for t (keep, drain) */
    tail->pend_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    tail->next = t;
    /* stage k takes the values of stage k-1 per batch, all of them
     * after stage k-1 took the whole batch (one protected call per stage
     * and batch: 6 % fewer instructions than per event, measured, see
     * docs/PERFORMANCE.md); SS_CHAIN_DEFER=event: each event of the head
     * goes through the whole chain before the next (a measuring switch) */
    const char *d = getenv("SS_CHAIN_DEFER");
    head->by_batch = !(d && !strcmp(d, "event"));
    *out = t;
    return 0;
}
