/*
 * Forward declarations of the daemon's main types, so headers can refer to
 * each other's types without include cycles.
 */
#ifndef AIOD_FORWARD_H
#define AIOD_FORWARD_H

typedef struct fn_entry fn_entry;
typedef struct plugin plugin;
typedef struct task task;
typedef struct task_run task_run;
typedef struct output output;
typedef struct conn conn;
typedef struct waiter waiter;
typedef struct task_plan task_plan;
typedef struct caller caller;

#endif
