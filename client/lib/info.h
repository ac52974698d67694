/*
 * info: the aioc_task_info wrapper, shared by aioc_show (info.c) and the
 * listing (list.c).
 */
#ifndef AIOC_INFO_H
#define AIOC_INFO_H

#include <stdbool.h>

#include "aioc.h"
#include "aiod.pb-c.h"

/* Wraps a TaskInfo taken out of a reply; with `args`, moves its arguments
 * into one list value. Takes `pb` (also on failure). NULL on OOM. */
aioc_task_info *info_wrap(Aiod__TaskInfo *pb, bool args);

#endif
