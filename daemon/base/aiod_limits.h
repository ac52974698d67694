/*
 * Every limit of the daemon, with its default and why that number. Settings
 * (config.c) may override the ones marked "setting". Hitting a limit gives
 * the client an error naming it (ERROR_LIMIT) and backpressure, never
 * unbounded growth.
 */
#ifndef AIOD_LIMITS_H
#define AIOD_LIMITS_H

/* Largest frame payload either side accepts (setting max_frame). 4 MiB holds
 * any reasonable argument list or result while bounding what one bad client
 * can make us buffer. */
#define LIMIT_MAX_FRAME (4u * 1024 * 1024)
/* The smallest max_frame a setting may ask for: 1 KiB still carries a hello,
 * its reply and an ordinary call with its error messages. */
#define LIMIT_MAX_FRAME_MIN 1024u

/* Unanswered requests per connection before the daemon stops reading it
 * (setting max_in_flight). 4096 covers pipelined benchmarks (256 each) and
 * the 1,000-task test with room; each costs one small struct. */
#define LIMIT_MAX_IN_FLIGHT 4096u

/* Bytes of replies held for one connection, beyond what its socket's buffer
 * took, before we stop reading from it and stop producing for it (setting
 * max_write_queue). 16 MiB: four full frames. Past twice this, and past
 * this plus one max_frame frame (conn_drop_line), the connection is
 * dropped as a slow reader. */
#define LIMIT_MAX_WRITE_QUEUE (16u * 1024 * 1024)
/* The range a max_write_queue setting may take: below 64 KiB a few
 * ordinary replies would already pause a connection; past 1 TiB the number
 * is a typo, not a memory budget. */
#define LIMIT_MAX_WRITE_QUEUE_MIN (64u * 1024)
#define LIMIT_MAX_WRITE_QUEUE_MAX (1ull << 40)

/* Connections at once (setting max_connections). Each costs one fd; the
 * daemon raises its soft RLIMIT_NOFILE to the hard limit at start, and 1024
 * leaves room for plugin fds within Debian's default hard limit. */
#define LIMIT_MAX_CONNECTIONS 1024u

/* How long a connection may go without saying hello (setting
 * hello_timeout_ms), from its accept: past it the client is told so and
 * closed. Without a bound, clients that connect and say nothing hold every
 * one of max_connections, root's included, for as long as they like. Any
 * client says hello in its first round trip; 10 s leaves room for a loaded
 * machine. */
#define LIMIT_HELLO_TIMEOUT_MS 10000u

/* Unfinished tasks at once, all owners (setting max_tasks). Each holds a
 * coroutine stack once started; 1M keeps RSS bounded at about 2 GiB. */
#define LIMIT_MAX_TASKS (1024u * 1024)

/* Lines kept per task output (setting max_output_lines) and bytes per line:
 * older lines are dropped and counted once the buffer is full. */
#define LIMIT_MAX_OUTPUT_LINES 1000u
#define LIMIT_MAX_LINE 4096u

/* Finished submitted tasks whose outcome is kept (setting retain_count) and
 * for how long (setting retain_seconds). */
#define LIMIT_RETAIN_COUNT 10000u
#define LIMIT_RETAIN_SECONDS 3600u
/* The memory they may hold together (setting retain_bytes): arguments,
 * results and output. A frame of 4 MiB unpacks to some 30 MB of values. */
#define LIMIT_RETAIN_BYTES ((size_t)64 << 20)

/* Connections and unfinished tasks per user (settings
 * max_connections_per_uid, max_tasks_per_uid): one user cannot take all
 * of max_connections or max_tasks from the others. Root is exempt. */
#define LIMIT_MAX_CONNECTIONS_PER_UID 256u
#define LIMIT_MAX_TASKS_PER_UID (256u * 1024)
/* The memory one user's unfinished tasks may hold in arguments (setting
 * max_task_bytes_per_uid), sized as retain_bytes sizes them: waiting tasks
 * (--delay, --after, a concurrency limit) keep theirs until they run, and
 * without a bound one user could fill the machine's memory with them.
 * Some 8 frames of 4 MiB of small values, or thousands of ordinary tasks. */
#define LIMIT_MAX_TASK_BYTES_PER_UID ((size_t)256 << 20)
/* Its smallest: room for one task of a few arguments. */
#define LIMIT_MAX_TASK_BYTES_PER_UID_MIN ((size_t)64 << 10)

/* Largest encoded result a task may return (setting max_result): a quarter
 * of max_frame, so an Outcomes reply carrying a few still fits a frame. */
#define LIMIT_MAX_RESULT (1024u * 1024)
/* The smallest max_result a setting may ask for: 1 KiB holds any scalar
 * result and a short string or list. */
#define LIMIT_MAX_RESULT_MIN 1024u

/* Nesting of values (a scalar is 1) and of protobuf messages in a frame.
 * Both stop stack exhaustion in recursive code (ours and protobuf-c's). */
#define LIMIT_VALUE_DEPTH 32u
#define LIMIT_MESSAGE_DEPTH 100u

/* Items in one Await, Gather or Cancel request. */
#define LIMIT_MAX_BATCH 100000u

/* Size of the one run stack every coroutine runs on (setting stack_size).
 * 256 KiB of address space, of which only touched pages cost memory;
 * plenty for plugin code that keeps big buffers on the heap. A suspended
 * task keeps only its live frames, copied aside. */
#define LIMIT_STACK_SIZE (256u * 1024)
/* The range a stack_size setting may take. Below 16 KiB the daemon's own
 * frames (the scheduler's trampoline, the plugin API, libc's printf family)
 * leave a plugin nothing; past 1 GiB it is a typo: the run stack is one
 * mapping of address space. coro.c also keeps at least
 * LIMIT_STACK_MIN_PAGES pages, for systems whose pages are larger than
 * 4 KiB. */
#define LIMIT_STACK_SIZE_MIN (16u * 1024)
#define LIMIT_STACK_SIZE_MAX (1ull << 30)
#define LIMIT_STACK_MIN_PAGES 4u

/* A fault this many pages below the run stack's guard page is still taken
 * for a stack overflow of the running task (and reported as one): a frame
 * bigger than the guard page can step over it. */
#define LIMIT_STACK_GUARD_SLACK_PAGES 16u

/* Seconds running tasks get to finish after SIGTERM before the daemon exits
 * anyway (setting shutdown_grace). */
#define LIMIT_SHUTDOWN_GRACE 5u

/* A task that holds the loop longer than this (ms) is reported, like
 * asyncio's slow_callback_duration. */
#define LIMIT_SLOW_STEP_MS 100u

/* The longest timer the daemon arms, in milliseconds: a sleep, an await,
 * gather or wait timeout, a socket deadline or a child's kill grace longer
 * than this (or infinite) is armed for this long instead, about 31,700
 * years: a wait without end, while uv_now() plus it stays far from
 * uint64_t's end. Seconds become ms as ceil(seconds * 1000.0), compared with
 * this as a double before any conversion to an integer (a double past 2^64
 * does not convert). */
#define LIMIT_TIMER_MAX_MS 1000000000000000ull

/* Functions one plugin may declare, parameters one function may take, and
 * the length of a plugin's, function's or parameter's name. Sanity bounds
 * checked when a plugin loads: far above any real plugin, low enough that a
 * corrupt descriptor is refused before the daemon walks garbage. */
#define LIMIT_PLUGIN_FUNCTIONS 4096u
#define LIMIT_FUNCTION_PARAMS 64u
#define LIMIT_PLUGIN_NAME 64u

/* A task's socket (sock.c): its receive buffer grows to at most this, and
 * reading pauses while half of it waits unread, so libuv is always offered
 * at least as much room again. 256 KiB per socket keeps a few thousand open
 * sockets well under a gigabyte while a 64 KiB read (the kernel's usual
 * batch) never has to wait for room. */
#define LIMIT_SOCK_READ_BUFFER (256u * 1024)
/* A task's socket's receive buffer starts at this size and doubles on
 * demand up to LIMIT_SOCK_READ_BUFFER: 16 KiB is enough for a request line
 * or a small reply, so that thousands of idle sockets cost little. */
#define LIMIT_SOCK_READ_BUFFER_MIN (16u * 1024)

/* Largest piece of a task's socket write copied to the heap at once: a big
 * write is sent in pieces of this size, one after another, so it costs at
 * most this much memory beyond the caller's own buffer. */
#define LIMIT_SOCK_WRITE_CHUNK (256u * 1024)

/* Bytes of stdout and of stderr kept per child process (process.c); the
 * rest is dropped and counted ("stdout_truncated"/"stderr_truncated" in the
 * result). 16 MiB holds any build log a person would read, while a child
 * writing without end (`yes`) cannot grow the daemon by more than 32 MiB per
 * process. A capture buffer starts at LIMIT_PROC_CAPTURE_MIN bytes and
 * doubles, and each read from a child's pipe takes at most
 * LIMIT_PROC_READ_CHUNK bytes (the kernel's pipe buffer is 64 KiB). */
#define LIMIT_PROC_CAPTURE (16u * 1024 * 1024)
#define LIMIT_PROC_CAPTURE_MIN 4096u
#define LIMIT_PROC_READ_CHUNK (64u * 1024)

/* Seconds between SIGTERM and SIGKILL for a child process whose spec says 0
 * (kill_grace): long enough for a program to flush and clean up, short
 * enough that a cancelled task ends promptly. */
#define LIMIT_PROC_KILL_GRACE 5.0

/* Arguments and environment entries per child process: a sanity bound far
 * above anything exec accepts (ARG_MAX is 2 MiB of text on Linux). */
#define LIMIT_PROC_STRINGS 65536u

/* A settings file larger than this is refused: it cannot be a real one.
 * Each of its lines holds less than LIMIT_CONFIG_LINE bytes before its
 * newline; a longer one is refused, naming its line. The longest real one
 * is cluster_queues (a key is not repeated): 64 names of 64 characters
 * with their separators take about 4,200 bytes, which 4,096 refused. */
#define LIMIT_CONFIG_FILE (1024u * 1024)
#define LIMIT_CONFIG_LINE 8192u

/* Task ids are reserved on disk (state_dir/next-id) in blocks before they
 * are handed out, so that none is reused after a restart or a crash. The
 * first block is small, so that ids after a restart stay short for a
 * lightly used daemon; each next block doubles, up to the largest, so that
 * a busy daemon writes the file at most a few times a second (one write and
 * fsync per block, on the loop). */
/* Local task ids stay below this (protocol.md): ids from it up are a
 * cluster's (cluster/ops.h CLUSTER_ID_BASE). */
#define LIMIT_LOCAL_ID_END (UINT64_C(1) << 48)
#define LIMIT_ID_BLOCK_MIN 1024u
#define LIMIT_ID_BLOCK_MAX (1024u * 1024)

/* A connecting user's groups (NSS) are cached this long (identity.c), and
 * looked up with room for this many groups first. */
#define LIMIT_IDENTITY_CACHE_SECONDS 60u
#define LIMIT_IDENTITY_GROUPS 64

/* The text of an error message sent to a client, or set by a plugin task
 * (api->fail) or logged by one (api->log): longer text is cut. */
#define LIMIT_MESSAGE 1024u

/* A client's request timeout (Await, Gather) is at most this many seconds
 * (about 31 years): a larger one is refused as a mistake. */
#define LIMIT_TIMEOUT_SECONDS 1e9

/* Connection buffers (net/conn.c): the write buffer's first size; the
 * largest one kept between replies (a larger one, grown for a big reply, is
 * freed once sent); the queued bytes that trigger a write before the end of
 * the loop iteration; the read buffer's room asked for each read. */
#define LIMIT_CONN_WBUF_FIRST 16384u
#define LIMIT_CONN_WBUF_KEEP 65536u
#define LIMIT_CONN_EARLY_FLUSH 1024u
#define LIMIT_CONN_READ_ROOM 65536u

/* Connections refused over a limit that are kept open until their client
 * hangs up, so that it reads why before a reset; past this many the refusal
 * is sent and the connection closed at once. */
#define LIMIT_LINGERING 64u

/* A second after the last running task ends (tasks that only wait do not
 * count), memory goes back to the kernel
 * (core/idle.c). */
#define LIMIT_IDLE_DELAY_MS 1000u

/* Plugin directories searched, the built-in one included. */
#define LIMIT_PLUGIN_DIRS 64u

/* The stall detector (system/stall.c): its thread looks at the loop's
 * heartbeat this often at most (a quarter of stall_warning_ms when that is
 * lower), so a stall is reported at most this late after it passes
 * stall_warning_ms. Ten looks a second cost nothing measurable. */
#define LIMIT_STALL_CHECK_MS 100u

/* Default of the setting stall_warning_ms (flag --stall-warning-ms): a loop
 * held this long by one task step, one request or anything else is
 * reported while it is still held. A second is ten times the slow-step
 * warning (LIMIT_SLOW_STEP_MS) and far below systemd's WatchdogSec=30s, so
 * the report comes long before the watchdog kills the daemon. */
#define LIMIT_STALL_WARNING_MS 1000u

/* Open files kept back from connections when max_connections is reconciled
 * with RLIMIT_NOFILE at start (app/main.c): this many for the daemon itself
 * (standard streams, the loop's epoll, signal and async descriptors, the
 * journal, the state directory, the listening socket and its reserve,
 * plugins being loaded, the thread pool's name lookups), plus a quarter of
 * the limit for what tasks open (child processes' pipes, sockets). The
 * rest is the most connections the daemon accepts. */
#define LIMIT_FD_RESERVE 32u
#define LIMIT_FD_RESERVE_DIVISOR 4u

/* When no descriptor is left even to refuse a connection with (net/
 * server.c), accepting stops and is tried again after this long, so that
 * a listening socket that stays readable cannot spin the loop. */
#define LIMIT_ACCEPT_RETRY_MS 100u

/* Connections refused for want of descriptors are logged as one line with
 * their count at most this often. */
#define LIMIT_ACCEPT_REPORT_MS 1000u

/* ListTasks pages (listing.h): at most this many tasks in one reply, and at
 * most this many tasks looked at for one request (a few milliseconds of the
 * loop); each filter (states, functions, owners) of at most this many
 * entries. */
#define LIMIT_LIST_PAGE 10000u
#define LIMIT_LIST_VISITS 65536u
#define LIMIT_LIST_FILTERS 256u

/* Requests that wait (Await, Gather, Logs with follow) beyond
 * max_in_flight are read and parked, in order, up to this many bytes per
 * connection (and one frame more); then the connection is no longer read
 * until they run. Control requests behind them are read and run at once. */
#define LIMIT_PARKED_BYTES (1024u * 1024)

/* All connections' queued replies together (setting
 * max_write_queue_total): past it, the connections with the most queued
 * are dropped first, until the total is under it again. */
#define LIMIT_MAX_WRITE_QUEUE_TOTAL (256u * 1024 * 1024)

/* All connections' read buffers together (setting max_read_buffer_total):
 * each may hold an unfinished frame of up to max_frame bytes (4 MiB, in a
 * buffer of 8), so 1,024 clients sending most of one frame and stopping
 * would hold 8 GiB. Past it, the connection whose unfinished frame has
 * waited longest for its rest is dropped, until the total is under again. */
#define LIMIT_MAX_READ_BUFFER_TOTAL (256u * 1024 * 1024)

/* A connection's read buffer larger than this is freed once it is empty:
 * one big frame does not keep its 8 MiB for the life of the connection. */
#define LIMIT_CONN_READ_KEEP (4u * LIMIT_CONN_READ_ROOM)

/* A follower stops getting lines while its connection has this many bytes
 * queued (or half of max_write_queue when that is less), and gets them
 * again once the connection is down to half of that. */
#define LIMIT_FOLLOW_QUEUE (256u * 1024)

/* How long (setting output_hold_ms) a task's own follower (aioctl run)
 * that makes no progress may hold back the task's output producer before
 * its lines are dropped instead. */
#define LIMIT_OUTPUT_HOLD_MS 10000u

/* A task's result in its outcome's log line: at most this many bytes of
 * its JSON (cut on a character boundary). */
#define LIMIT_LOG_RESULT 512u

/* One drain of the ready tasks runs this long at most (core/run.c); the
 * rest run after the loop has polled for I/O. With the dispatch slice
 * below, a loop iteration under a flood of submits lasts about 25 ms, so
 * that a timer or a reply waits at most about two of them (the hostile
 * battery: 20 ms and 10 ms gave a timer up to 96-106 ms late, 10 and 5
 * 61-80 ms). */
#define LIMIT_DRAIN_SLICE_MS 10u

/* Tasks failed or released because a task they run after ended (--after)
 * are settled for this long at most per turn (core/plan.c); the rest go on
 * after the loop has polled. One user's 200,000 dependents of one task
 * held the loop 0.53 s in one turn. */
#define LIMIT_DEPENDENTS_SLICE_MS 5u

/* Frames of all connections are dispatched for this long at most per loop
 * iteration phase (net/conn.c), each connection this many frames at a time
 * in turns: a connection that still has whole frames buffered then stops
 * reading and waits for its next turn, so that a client pipelining
 * thousands of requests delays another's one request by a turn, not by the
 * whole pipeline. */
#define LIMIT_DISPATCH_SLICE_MS 5u
#define LIMIT_DISPATCH_TURN 256u

/* Drains run back to back in one loop iteration while tasks or callbacks
 * they made ready are waiting, at most this many (and within the slice
 * above) before the loop polls again: a wake-up then costs a fraction of
 * an epoll_wait instead of one, and I/O and timers still come in at least
 * every 32 drains. Each drain still runs only what was ready when it
 * began, so the order is asyncio's. */
#define LIMIT_DRAINS_PER_POLL 32u

/* What all processes' output streams in one loop iteration, in bytes: a
 * line costs its length plus LIMIT_PROC_STREAM_LINE_COST, once and once per
 * follower (api/process.c); a few milliseconds of the loop. The rest waits
 * for the next iteration. */
#define LIMIT_PROC_STREAM_SLICE (4u * 1024 * 1024)
/* ... and this long at most, read every 64 lines. */
#define LIMIT_PROC_STREAM_MS 5u
#define LIMIT_PROC_STREAM_LINE_COST 64u

/* Values (aiod.Value messages, at any depth) in one request: a 4 MiB frame
 * holds two million empty ones, which unpacked and copied take hundreds of
 * megabytes and seconds of the loop. Past this the request is refused with
 * ERROR_LIMIT before anything is unpacked. Room for a Gather of
 * LIMIT_MAX_BATCH calls with two arguments each. */
#define LIMIT_FRAME_VALUES 262144u

/* Programs started by tasks run this many nice levels below the daemon
 * (api/process.c): a child that only computes takes the CPU from them, not
 * from the event loop that serves every client. */
#define LIMIT_PROC_NICE 5

/* Schedules (core/plan.c). At most this many retries per task, and tasks
 * it runs after: a thousand attempts already spans days of backoff, and
 * 256 dependencies keep a Submit's check and the stored record small. */
#define LIMIT_RETRIES 1000u
#define LIMIT_AFTER 256u
/* Backoff when the Schedule leaves it 0: the first retry after up to 1 s,
 * and no wait longer than 10 minutes. */
#define LIMIT_BACKOFF_DEFAULT 1.0
#define LIMIT_BACKOFF_MAX_DEFAULT 600.0
/* Restarts of the daemon that may interrupt one task under on_interrupt =
 * retry before it ends Interrupted anyway: a task that brings the daemon
 * down every time must not do so forever. */
#define LIMIT_INTERRUPT_RETRIES 10u

/* The state store (core/persist.c). Of a finished task's output, the last
 * lines kept with its outcome, and their bytes at most. */
#define LIMIT_STORE_OUTPUT_LINES 64u
#define LIMIT_STORE_OUTPUT_BYTES (64u * 1024)
/* A batch that failed to commit (disk full) is tried again after this
 * long, with whatever changed meanwhile. */
#define LIMIT_STORE_RETRY_MS 1000u
/* While commits keep failing, the error is logged again this often (the
 * first failure, and the commit that goes in again, always are). */
#define LIMIT_STORE_FAILURE_LOG_MS 60000u
/* Changes nobody waits for (outcomes, retries, deletions) wait this long,
 * or until this many gather, for a change someone waits for to share its
 * commit: a lone client's submits then cost one commit each, not two. */
#define LIMIT_STORE_LAZY_MS 20u
#define LIMIT_STORE_LAZY_ROWS 4096u
/* Records encoded into one batch at most: encoding costs the loop about a
 * microsecond each (more on a busy machine), so a million changed tasks (a
 * burst of detached submits) go in batches of a few ms of loop time, not
 * one of a second; 4096 rows is still more than a busy daemon's average
 * commit (about 1,300), so commits do not get more frequent for it. */
#define LIMIT_STORE_BATCH_ROWS 4096u
/* The store's log (system/storelog.h): changes committed as rows of the
 * `log` table and not yet folded into `tasks`, at most this many or this
 * many bytes (the rows are also kept in memory, to be folded without being
 * read back). The more there are, the more superseded changes are never
 * folded: 65,536 is some 30,000 tasks' submit and outcome, more than the
 * default retain_count, so a busy daemon's pruned tasks never reach
 * `tasks`. A batch is cut into rows of at most LIMIT_STORE_LOG_ROW_BYTES
 * (SQLite's own limit for a blob is 1e9 bytes). */
#define LIMIT_STORE_LOG_RECORDS 65536u
#define LIMIT_STORE_LOG_BYTES ((size_t)16 << 20)
#define LIMIT_STORE_LOG_ROW_BYTES ((size_t)16 << 20)
/* A log row older than this is folded at the next commit, or by the
 * store's thread when no commit comes: a quiet daemon's `tasks` is whole
 * soon, and the pages of its pruned outcomes free. */
#define LIMIT_STORE_LOG_AGE_MS 1000u

/* The cluster (docs/cluster.md). Queued tasks one host runs at once by
 * default: enough to keep a few hosts busy with short tasks, few enough that
 * one host does not take a whole burst that others could share. */
#define LIMIT_CLUSTER_CAPACITY 64u
/* A host silent this long (it renews its claim on its tasks every third of
 * it) has its tasks claimed by others: long enough to ride out a Redis
 * restart or a paused VM, short enough that work moves within a minute. */
#define LIMIT_CLUSTER_VISIBILITY_MS 30000u
#define LIMIT_CLUSTER_VISIBILITY_MIN_MS 300u
/* How long a finished queued task's outcome and output stay in Redis. */
#define LIMIT_CLUSTER_RETAIN_SECONDS 86400u
/* Reconnecting to Redis: the first wait, doubled after each failure up to
 * the second. */
#define LIMIT_CLUSTER_BACKOFF_MIN_MS 100u
#define LIMIT_CLUSTER_BACKOFF_MAX_MS 5000u
/* How often a connection asks a Redis that answers LOADING (it restarted
 * and is reading its data set) whether it is done. */
#define LIMIT_CLUSTER_LOADING_POLL_MS 200u
/* A connect to Redis that has not completed after this long is given up
 * and tried again (loopback and LAN answer in well under it). */
#define LIMIT_CLUSTER_CONNECT_TIMEOUT_MS 2000u
/* A read of the queues blocks in Redis at most this long, so a change of
 * what the host can take is seen soon. */
#define LIMIT_CLUSTER_READ_BLOCK_MS 2000u
/* Lines of a queued task's output kept in its Redis stream (the oldest
 * trimmed beyond). */
#define LIMIT_CLUSTER_OUTPUT_LINES 10000u
/* A submit with cluster_replicas waits this long for the replicas. */
#define LIMIT_CLUSTER_REPLICAS_WAIT_MS 5000u
/* A follower of a queued task's output waits in Redis this long for new
 * lines before it looks at the task's state again. */
#define LIMIT_CLUSTER_FOLLOW_BLOCK_MS 1000u
/* Readers of queued tasks' output (Logs, with or without follow) at once
 * on one host, and of them for one user who is not an administrator. Each
 * holds a Redis connection of its own (a follower blocks in XREAD): one
 * user opening thousands through one socket connection (max_in_flight
 * each) took Redis to maxclients (10,000) and cut every host off. 128 per
 * host leaves room for about 75 hosts under Redis's default maxclients. */
#define LIMIT_CLUSTER_FOLLOWERS 128u
#define LIMIT_CLUSTER_FOLLOWERS_PER_UID 16u
/* A connection owed a reply that has had none for this long (beyond what
 * its blocking commands may take) is given up and made again: a Redis
 * process that is stopped, or hangs, keeps its TCP connections open (its
 * kernel answers), and requests would wait on it for ever. Commands take
 * well under a millisecond; a fork or an AOF rewrite, a few hundred. */
#define LIMIT_CLUSTER_REPLY_TIMEOUT_MS 5000u

#endif
