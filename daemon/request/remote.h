/*
 * A client's requests on queued tasks (docs/cluster.md): a Submit with a
 * queue, and Await, Cancel, ShowTask and Logs of cluster ids, on any host.
 * Each moves into a remote request that the cluster answers once Redis
 * has (cluster/ops.h); the connection's closing abandons it.
 */
#ifndef AIOD_REMOTE_H
#define AIOD_REMOTE_H

#include "aiod-pb.h"
#include "request/req.h"
#include "request/session.h"

void remote_submit(session *s, req *r, const Aiod__Submit *m);
/* Every id of the request is a cluster id (dispatch checks). */
void remote_await(session *s, req *r, const Aiod__Await *a);
void remote_cancel(session *s, req *r, const Aiod__Cancel *k);
void remote_show(session *s, req *r, const Aiod__ShowTask *m);
void remote_logs(session *s, req *r, const Aiod__Logs *l);
/* The connection closes: every remote request of it is abandoned. */
void remote_session_closed(session *s);

#endif
