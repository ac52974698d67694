/*
 * The Lua scripts the cluster runs in Redis. Each moves a task from one
 * state to the next in one step that no other host can interleave with
 * (Redis runs a script atomically), which is what makes "done exactly
 * once" and "a cancelled queued task never starts" hold across hosts.
 * docs/cluster.md lists the keys and states they work on.
 *
 * Every script is called with one more argument than listed below, last
 * (ARGV[#ARGV]): the cluster's events channel (link_events_channel), on
 * which the scripts that end or cancel a task publish. Pub/sub ignores
 * the database, so the channel's name carries it.
 */
#ifndef AIOD_CLUSTER_LUA_H
#define AIOD_CLUSTER_LUA_H

/*
 * Submits, any number at once. KEYS: the counter, then per task its stream
 * and its serve set. ARGV: the submitting host, then per task the
 * QueuedTask bytes (id 0: the id is the entry's field), queue, function,
 * owner uid and creation usec. Returns per task its new id as text, or
 * "NOSERVE" when no host ever served the function on the queue.
 */
extern const char lua_submit[];

/*
 * Start an entry the host read or claimed. KEYS: task, stream. ARGV: entry
 * id, host, now usec, "1" to retry an interrupted run, the most
 * interruptions, the message of an Interrupted end, retain seconds, this
 * process's run mark. A task running on this host under this process's
 * mark was taken by a script whose reply was lost (it never ran): it is
 * started, not taken for interrupted. Sets the hash's `run` to the mark.
 * Returns {"run", QueuedTask bytes, previous host or ""}, {"ended"}
 * (interrupted, and failed here under fail, or cancelled meanwhile) or
 * {"skip"} (cancelled, finished or gone: the entry was acknowledged).
 */
extern const char lua_start[];

/*
 * Tasks the host ran ended, any number at once. KEYS: per task, its hash,
 * stream and output. ARGV: host, retain seconds, then per task: entry id,
 * state, error kind, error message, result bytes, finished usec, output
 * lines, output dropped. Returns per task "ok", or "lost" when the task is
 * no longer this host's (another claimed it).
 */
extern const char lua_finish[];

/*
 * Cancel. KEYS: task. ARGV: the requester's uid, "1" if it may act on any
 * task, now usec, retain seconds, the requesting host. Returns {"none"},
 * {"denied", owner uid}, {"cancelled"} (it was queued, and is now
 * cancelled), {"running", host} (that host was told, and the task is
 * marked: a host that claims it ends it cancelled) or {"finished",
 * state}.
 */
extern const char lua_cancel[];

/*
 * A task marked running by lua_start that this host will not start after
 * all (it is stopping, or a limit is full): queued again. KEYS: task.
 * ARGV: host, now usec, retain seconds. Returns 1; 2 if a cancel was
 * asked meanwhile (it ends cancelled instead); 0 if it was not this
 * host's.
 */
extern const char lua_unstart[];

/*
 * Takes new entries for this host and starts them: KEYS are its streams;
 * ARGV: host, the most entries in all, the index of the stream to begin
 * with (so that every function gets its turn), now usec, this process's
 * run mark (lua_start), then per stream the most entries to take from it
 * (its function's limit leaves room for no more). Each entry whose
 * task is queued becomes running here (as lua_start does); the others
 * (cancelled while queued) are acknowledged. Returns {{stream, entry id,
 * task id, QueuedTask bytes}, ...} for the tasks started. A plain
 * XREADGROUP's COUNT is per stream; this keeps a host within its capacity
 * however many functions it serves, in one round trip for a whole batch.
 */
extern const char lua_fetch[];

/*
 * Redis's heartbeat of the cluster. Every host calls lua_pulse every third
 * of cluster_visibility_ms, and lua_claim runs it before it claims: each
 * records Redis's clock (TIME) in aiod:pulse. A gap of over half the
 * visibility between two of them means Redis ran no host's calls for that
 * long (it was stopped, hung, or every host was cut off from it): the
 * entries grew idle with nobody able to renew them, and when Redis runs
 * again the hosts' queued renewals and claims run in any order. So claims
 * wait one visibility from then (aiod:calm), for every live host's
 * renewals to come through. A calm ending more than one visibility from
 * now (Redis's clock was set back since) is ended.
 *
 * lua_pulse: KEYS aiod:pulse, aiod:calm; ARGV the visibility (ms).
 * Returns 1.
 * lua_claim: KEYS the stream, aiod:pulse, aiod:calm; ARGV the visibility
 * (ms, also the idle time claimed), the host, the cursor, the count.
 * Returns XAUTOCLAIM's reply, or {"calm"} while claims wait.
 */
extern const char lua_pulse[];
extern const char lua_claim[];

/* Every script above, NULL-terminated (loaded once per connection). */
extern const char *const lua_scripts[];

/*
 * Await. KEYS: task. Returns {"none"}, {"wait", owner uid} (the finish
 * will publish "done ID") or {"done", field, value, ...} (the whole hash).
 */
extern const char lua_await[];

#endif
