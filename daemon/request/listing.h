/*
 * ListTasks: one page of the tasks a client may act on, in id order, with
 * its filters (states, functions, owners) applied in the daemon. No request
 * holds the loop long: a page holds at most LIMIT_LIST_PAGE tasks and fits
 * in max_frame, and at most LIMIT_LIST_VISITS tasks are looked at for it
 * (then the page ends early, with `more` set and the cursor where it
 * stopped).
 */
#ifndef AIOD_LISTING_H
#define AIOD_LISTING_H

#include "aiod-pb.h"
#include "request/req.h"
#include "request/session.h"

/* Answers `r` with one TaskList page (or an Error naming a bad filter). */
void listing_handle(session *s, req *r, const Aiod__ListTasks *l);

#endif
