#!/bin/bash
# The deployment suite: installs aiod's .debs into a Debian 12 guest booted
# with systemd as PID 1 (tests/deploy/lab.sh) and checks it as real users.
#
#   tests/deploy/run.sh DEB_DIR
#
# DEB_DIR holds aiod_*.deb and libaioclient1_*.deb (scripts/package.sh OUTDIR).
# Every scenario gets a freshly booted guest with the packages just installed
# and the users alice, bob (group aiod), carol (aiod and aiodadm) and mallory
# (neither). Prints one line per check and, last, "N passed, M failed"; exits
# non-zero when M > 0 or N = 0. Must run as root; nothing is ever skipped.
#
# AIOD_DEPLOY_ONLY="s1 s5" runs only those scenarios (said loudly; for
# development). LAB_KEEP=1 leaves each guest's copy under /var/tmp/aiod-lab.

set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
# shellcheck source=lab.sh
. "$HERE/lab.sh"

NPASS=0
NFAIL=0
SCEN=setup
OUT=
ERR=
RC=0
WORK=
# Seconds one aioctl call may take (a daemon that cannot start must not hang
# its clients: this bounds the damage when it does).
AIOCTL_TIMEOUT=${AIOCTL_TIMEOUT:-40}

say() { printf '%s\n' "$*"; }
short() { printf '%s' "$1" | tr '\n' '|' | head -c "${2:-300}"; }
pass() {
    NPASS=$((NPASS + 1))
    say "PASS [$SCEN] $1"
}
# fail WHAT EXPECTED SEEN
fail() {
    NFAIL=$((NFAIL + 1))
    say "FAIL [$SCEN] $1"
    say "       expected: $2"
    say "       seen:     $3"
}
seen() { printf 'exit %s; stdout: %s; stderr: %s' "$RC" "$(short "$OUT")" "$(short "$ERR")"; }

finish() {
    local rc=$?
    lab_cleanup
    [ -n "$WORK" ] && rm -rf "$WORK"
    say "$NPASS passed, $NFAIL failed"
    if [ "$NFAIL" -gt 0 ] || [ "$NPASS" -eq 0 ]; then
        exit 1
    fi
    exit "$rc"
}

# ------------------------------------------------------------ guest commands

# g USER CMD…: run CMD in the guest as USER (no session environment); sets
# RC, OUT (stdout) and ERR (stderr).
g() {
    local u=$1
    shift
    # In the background and waited for, so that a signal to the suite is
    # handled at once (bash runs traps only between foreground commands).
    lab_as "$u" "$@" >"$WORK/stdout" 2>"$WORK/stderr" &
    wait $!
    RC=$?
    OUT=$(cat "$WORK/stdout")
    ERR=$(cat "$WORK/stderr")
}
# gs USER CMD…: the same with USER's user-manager environment.
gs() {
    local u=$1
    shift
    lab_as_session "$u" "$@" >"$WORK/stdout" 2>"$WORK/stderr" &
    wait $!
    RC=$?
    OUT=$(cat "$WORK/stdout")
    ERR=$(cat "$WORK/stderr")
}
# ga USER ARGS…: aioctl ARGS as USER, pointed at the system daemon through
# AIOD_SOCKET, so that scenarios other than S4 and S7 (which check the default
# socket) do not depend on how aioctl picks its default.
ga() {
    local u=$1
    shift
    LAB_CMD_TIMEOUT=$AIOCTL_TIMEOUT g "$u" env AIOD_SOCKET=/run/aiod/aiod.sock aioctl "$@"
}
# gsh USER SCRIPT: sh -c SCRIPT.
gsh() { g "$1" sh -c "$2"; }

# What a root shell command prints (stdout only), or nothing.
q() { LAB_CMD_TIMEOUT=30 lab_as root sh -c "$1" 2>/dev/null; }

expect_rc() { # NAME RC
    if [ "$RC" = "$2" ]; then pass "$1"; else fail "$1" "exit $2" "$(seen)"; fi
}
expect_ok() { expect_rc "$1" 0; }
expect_fail_rc() { # NAME: any non-zero exit
    if [ "$RC" != 0 ]; then pass "$1"; else fail "$1" "a non-zero exit" "$(seen)"; fi
}
# expect_re NAME RC ERE: exit RC and stdout+stderr match ERE (case-insensitive).
expect_re() {
    if [ "$RC" = "$2" ] && printf '%s\n%s\n' "$OUT" "$ERR" | grep -Eqi -- "$3"; then
        pass "$1"
    else
        fail "$1" "exit $2 and output matching /$3/" "$(seen)"
    fi
}

# poll TRIES INTERVAL CMD…: until CMD succeeds; bounded.
poll() {
    local tries=$1 iv=$2 i
    shift 2
    for ((i = 0; i < tries; i++)); do
        "$@" && return 0
        sleep "$iv"
    done
    return 1
}

uid_of() { q "id -u $1"; }
main_pid() { q 'systemctl show -p MainPID --value aiod.service'; }
unit_is() { [ "$(q "systemctl is-active $1")" = "$2" ]; }

# The task id in `aioctl --json run/submit/detach` output.
json_task_id() {
    printf '%s\n' "$1" | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if isinstance(o, dict):
        for k in ("task", "id"):
            if isinstance(o.get(k), int):
                print(o[k]); sys.exit(0)
sys.exit(1)'
}

# journal_outcomes ID: the outcome records of task ID as JSON lines: the
# journal entries with TASK_ID=ID and a STATE field (docs/deployment.md, Logs).
journal_outcomes() {
    lab_as root journalctl --sync >/dev/null 2>&1
    lab_as root journalctl -u aiod.service -o json --no-pager "TASK_ID=$1" 2>/dev/null |
        python3 -c '
import json, sys
for line in sys.stdin:
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if "STATE" in e:
        print(json.dumps({k: v for k, v in e.items() if not k.startswith("_")}))'
}

# ------------------------------------------------------------ per-scenario guest

DEBS=()

# A freshly booted guest with aiod's packages installed and the users made.
# Returns non-zero (after a FAIL line) when that cannot be done.
fresh_guest() {
    lab_cleanup
    lab_boot || {
        fail "booting the guest" "is-system-running: running or degraded" "see the [lab] lines above"
        return 1
    }
    if ! { mkdir -p "$LAB_ROOT/var/tmp/aiod-debs" && cp "${DEBS[@]}" "$LAB_ROOT/var/tmp/aiod-debs/" &&
        chmod 0755 "$LAB_ROOT/var/tmp/aiod-debs" && chmod 0644 "$LAB_ROOT"/var/tmp/aiod-debs/*.deb; }; then
        fail "copying the .debs into the guest" "$LAB_ROOT/var/tmp/aiod-debs/*.deb" "an error (above)"
        return 1
    fi
    local t0=$SECONDS
    gsh root 'cd /var/tmp/aiod-debs && DEBIAN_FRONTEND=noninteractive apt-get install -y ./aiod_*.deb ./libaioclient1_*.deb'
    if [ "$RC" != 0 ]; then
        fail "apt-get install -y ./aiod_*.deb ./libaioclient1_*.deb" "exit 0" \
            "exit $RC; $(short "$OUT$ERR" 1200)"
        return 1
    fi
    lab_log "packages installed in $((SECONDS - t0)) s"
    gsh root 'useradd -m -s /bin/bash -G aiod alice &&
              useradd -m -s /bin/bash -G aiod bob &&
              useradd -m -s /bin/bash -G aiod,aiodadm carol &&
              useradd -m -s /bin/bash mallory'
    if [ "$RC" != 0 ]; then
        fail "creating the users alice, bob, carol (aiod, aiodadm), mallory" "exit 0" "$(seen)"
        return 1
    fi
    return 0
}

# ------------------------------------------------------------ scenarios

s1_identity() {
    local alice id
    alice=$(uid_of alice)
    ga alice submit demo.sleep 30 a
    id=$OUT
    if [ "$RC" = 0 ] && [[ $id =~ ^[0-9]+$ ]]; then
        pass "alice: aioctl submit demo.sleep 30 a prints an id ($id)"
    else
        fail "alice: aioctl submit demo.sleep 30 a" "exit 0 and an id" "$(seen)"
        return
    fi
    ga bob show "$id"
    expect_re "bob: aioctl show $id (alice's) is refused" 2 'not allowed|not found|no such|only its owner'
    ga bob await --timeout 5 "$id"
    expect_re "bob: aioctl await $id is refused" 2 'not allowed|not found|no such|only its owner'
    ga bob cancel "$id"
    expect_re "bob: aioctl cancel $id is refused" 2 'not allowed|not found|no such|only its owner'
    ga alice show "$id"
    expect_re "alice's task still runs after bob's attempts" 0 'state: *running'

    ga alice --json show "$id"
    local owner
    owner=$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline()).get("uid"))' 2>/dev/null)
    if [ "$RC" = 0 ] && [ "$owner" = "$alice" ]; then
        pass "alice: aioctl --json show reports her uid $alice as owner"
    else
        fail "alice: aioctl --json show $id: owner" "uid $alice" "uid '$owner'; $(seen)"
    fi
    ga alice --json ps --all
    owner=$(printf '%s\n' "$OUT" | python3 -c '
import json, sys
for l in sys.stdin:
    o = json.loads(l)
    if str(o.get("task")) == sys.argv[1]:
        print(o.get("uid"))' "$id" 2>/dev/null)
    if [ "$RC" = 0 ] && [ "$owner" = "$alice" ]; then
        pass "alice: aioctl --json ps --all reports her uid $alice as owner"
    else
        fail "alice: aioctl --json ps --all: owner of $id" "uid $alice" "uid '$owner'; $(seen)"
    fi

    ga carol show "$id"
    expect_re "carol (aiodadm): aioctl show $id works" 0 "$id"
    ga carol cancel "$id"
    expect_ok "carol (aiodadm): aioctl cancel $id works"
    ga alice await --timeout 20 "$id"
    expect_rc "alice: aioctl await $id says cancelled (exit 5)" 5

    local rec
    if poll 50 0.2 eval 'rec=$(journal_outcomes "$id"); [ -n "$rec" ]'; then
        if printf '%s\n' "$rec" | python3 -c '
import json, sys
ok = all(json.loads(l).get("OWNER_UID") == sys.argv[1] for l in sys.stdin if l.strip())
sys.exit(0 if ok else 1)' "$alice"; then
            pass "journal: the outcome of task $id has OWNER_UID=$alice"
        else
            fail "journal: OWNER_UID of task $id's outcome" "OWNER_UID=$alice" "$(short "$rec" 500)"
        fi
    else
        fail "journal: outcome record of task $id" "an entry with TASK_ID=$id reporting its end" \
            "$(short "$(q "journalctl -u aiod -o cat --no-pager | tail -n 8")" 500)"
    fi
}

s2_no_code_as_daemon() {
    ga bob run proc.shell id
    expect_re "bob: aioctl run proc.shell id is refused" 2 'not allowed'
    ga carol run proc.shell 'id -un'
    if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -qx 'aiod-proc'; then
        pass "carol (aiodadm): proc.shell 'id -un' runs as aiod-proc"
    else
        fail "carol: aioctl run proc.shell 'id -un'" "exit 0 and a line 'aiod-proc'" "$(seen)"
    fi
    # The daemon (user aiod) must be able to signal what it started as
    # aiod-proc: a cancel ends the program and its process group (a
    # background sleep included), not only the task's record.
    ga carol submit proc.shell 'sleep 4041 & sleep 4042; echo never'
    local sid=${OUT//[^0-9]/}
    poll 50 0.2 eval '[ -n "$(q "pgrep -u aiod-proc -f \"sleep 4042\"")" ]'
    ga carol cancel "$sid"
    ga carol await --timeout 20 "$sid"
    if [ "$RC" = 5 ]; then
        pass "carol: a proc.shell task running as aiod-proc is cancelled (await exits 5)"
    else
        fail "carol: await of the cancelled proc.shell task $sid" "exit 5 (cancelled)" "$(seen)"
    fi
    if poll 50 0.2 eval '[ -z "$(q "pgrep -u aiod-proc -f \"sleep 404[12]\"")" ]'; then
        pass "the cancelled task's programs (aiod-proc) are gone, the background one too"
    else
        fail "programs of the cancelled task $sid" "no 'sleep 4041/4042' of aiod-proc left" \
            "$(q "pgrep -a -u aiod-proc sleep")"
    fi
    local pid
    pid=$(main_pid)
    if ! [[ $pid =~ ^[1-9][0-9]*$ ]]; then
        fail "aiod's MainPID" "a pid" "'$pid'"
        return
    fi
    # The unit's system call filter lets the daemon execute itself again with
    # its heap in huge pages (daemon/app/hugeheap.c): [heap] advised "hg".
    local heap
    heap=$(q "grep -A30 '\\[heap\\]\$' /proc/$pid/smaps | grep -m1 '^VmFlags:'")
    if ! grep -qE '\[(always|madvise)\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; then
        if [[ " $heap " != *" hg "* ]]; then
            pass "no transparent huge pages here: aiod leaves its heap alone"
        else
            fail "aiod's [heap] VmFlags without transparent huge pages" "no hg" "'$heap'"
        fi
    elif [[ " $heap " == *" hg "* ]]; then
        pass "aiod's heap is advised as huge pages under systemd"
    else
        fail "aiod's [heap] VmFlags under systemd" "hg among them" "'$heap'"
    fi
    # Each probe prints a marker saying whether it could; the first is a
    # control, so that a shell that fails at everything does not pass.
    ga carol run proc.shell "
        if cat /proc/self/environ >/dev/null; then echo SELF-OK; fi
        if cat /proc/$pid/environ >/dev/null 2>&1; then echo ENVIRON-READ; else echo ENVIRON-DENIED; fi
        if (exec 3</proc/$pid/mem) 2>/dev/null; then echo MEM-OPENED; else echo MEM-DENIED; fi
        if kill -0 $pid 2>/dev/null; then echo SIGNAL-SENT; else echo SIGNAL-DENIED; fi"
    if ! printf '%s\n' "$OUT" | grep -qx SELF-OK; then
        fail "carol: probes of the daemon (pid $pid) from a proc.shell task" "the probes to run" "$(seen)"
        return
    fi
    local m
    for m in ENVIRON:"read /proc/$pid/environ" MEM:"open /proc/$pid/mem" SIGNAL:"kill -0 $pid"; do
        if printf '%s\n' "$OUT" | grep -qx "${m%%:*}-DENIED"; then
            pass "a proc.shell task cannot ${m#*:} (the daemon)"
        else
            fail "a proc.shell task must not ${m#*:} (the daemon)" "${m%%:*}-DENIED" "$(seen)"
        fi
    done
    ga mallory plugins
    if [ "$RC" = 3 ] || { [ "$RC" != 0 ] && printf '%s' "$ERR" | grep -qi 'permission denied'; }; then
        pass "mallory (not in group aiod) cannot connect (exit $RC)"
    else
        fail "mallory: aioctl plugins" "exit 3 or 'permission denied'" "$(seen)"
    fi
}

s3_ids_never_reused() {
    local n m k oldpid
    ga alice submit demo.echo alice-before-restart
    n=$OUT
    [ "$RC" = 0 ] && [[ $n =~ ^[0-9]+$ ]] || {
        fail "alice: aioctl submit demo.echo" "exit 0 and an id" "$(seen)"
        return
    }
    ga alice await "$n"
    expect_re "alice: aioctl await $n before the restart" 0 alice-before-restart
    g root systemctl restart aiod
    expect_ok "systemctl restart aiod"
    ga bob submit demo.echo bob-after-restart
    m=$OUT
    if [ "$RC" = 0 ] && [[ $m =~ ^[0-9]+$ ]] && [ "$m" -gt "$n" ]; then
        pass "after systemctl restart: new id $m > $n"
    else
        fail "after systemctl restart: bob's new task id" "an id > $n" "$(seen)"
    fi
    ga alice await --timeout 10 "$n"
    if printf '%s\n%s' "$OUT" "$ERR" | grep -q bob-after-restart; then
        fail "alice: aioctl await $n after the restart" "not bob's result" "$(seen)"
    elif [ "$RC" = 0 ] && printf '%s' "$OUT" | grep -q alice-before-restart; then
        pass "alice: aioctl await $n after the restart gives her own result"
    elif [ "$RC" = 2 ]; then
        pass "alice: aioctl await $n after the restart is refused (exit 2), not another's result"
    else
        fail "alice: aioctl await $n after the restart" "her result or exit 2" "$(seen)"
    fi

    oldpid=$(main_pid)
    g root systemctl kill -s KILL aiod
    expect_ok "systemctl kill -s KILL aiod"
    if poll 100 0.1 eval '[ "$(main_pid)" != "$oldpid" ]'; then
        pass "the killed daemon (pid $oldpid) is gone"
    else
        fail "the killed daemon is gone" "MainPID other than $oldpid" "MainPID $(main_pid)"
    fi
    ga alice submit demo.echo alice-after-kill
    k=$OUT
    if [ "$RC" = 0 ] && [[ $k =~ ^[0-9]+$ ]] && [ "$k" -gt "$m" ] && [ "$k" -gt "$n" ]; then
        pass "after kill -9: new id $k > $m"
    else
        fail "after kill -9: alice's new task id" "an id > $m" "$(seen)"
    fi
    local newpid
    newpid=$(main_pid)
    if [[ $newpid =~ ^[1-9][0-9]*$ ]] && [ "$newpid" != "$oldpid" ]; then
        pass "a new daemon (pid $newpid) answered after kill -9"
    else
        fail "a new daemon answered after kill -9" "MainPID other than $oldpid" "'$newpid'"
    fi
}

s4_first_activation() {
    local st
    st=$(q 'systemctl is-active aiod.socket')
    if [ "$st" = active ]; then pass "aiod.socket is active right after apt-get install"; else
        fail "aiod.socket right after apt-get install" "active" "'$st'"
    fi
    st=$(q 'systemctl is-enabled aiod.socket')
    if [ "$st" = enabled ]; then pass "aiod.socket is enabled right after apt-get install"; else
        fail "aiod.socket enabled right after apt-get install" "enabled" "'$st'"
    fi
    lab_log "aiod.service before the first call: $(q 'systemctl is-active aiod.service')"
    LAB_CMD_TIMEOUT=$AIOCTL_TIMEOUT g alice aioctl plugins
    expect_re "alice: aioctl plugins (no -s, no environment) lists demo.*" 0 '(^|[^a-z])demo\.[a-z]'
    if poll 100 0.1 unit_is aiod.service active; then
        pass "aiod.service is active after the first call"
    else
        fail "aiod.service after the first call" "active" "'$(q 'systemctl is-active aiod.service')'"
    fi
}

s5_bad_settings_keep_the_socket() {
    local line i t0 dt st ok_fail=0 ok_msg=0 ok_sock=0 ok_fast=0 last_seen=
    q 'echo "max_frame = banana" >> /etc/aiod/aiod.conf'
    line=$(q 'grep -n "^max_frame = banana" /etc/aiod/aiod.conf | cut -d: -f1')
    [[ $line =~ ^[0-9]+$ ]] || {
        fail "appending 'max_frame = banana' to /etc/aiod/aiod.conf" "the line in the file" "'$line'"
        return
    }
    g root systemctl restart aiod
    expect_fail_rc "systemctl restart aiod with max_frame = banana fails"
    # Said at error priority: `journalctl -p err` shows why aiod stopped.
    lab_as root journalctl --sync >/dev/null 2>&1
    local perr
    perr=$(q 'journalctl -u aiod.service -p err -o cat --no-pager')
    if printf '%s' "$perr" | grep -q "/etc/aiod/aiod.conf:$line"; then
        pass "journalctl -p err names /etc/aiod/aiod.conf:$line"
    else
        fail "journalctl -u aiod -p err after the failed start" "a line naming /etc/aiod/aiod.conf:$line" "$(short "$perr" 400)"
    fi
    st=$(q 'systemctl is-active aiod.socket')
    if [ "$st" = active ]; then pass "aiod.socket active after the failed restart"; else
        fail "aiod.socket after the failed restart" "active" "'$st'"
    fi
    for ((i = 1; i <= 8; i++)); do
        t0=$(date +%s%N)
        ga alice plugins
        dt=$((($(date +%s%N) - t0) / 1000000))
        last_seen="call $i: $(seen) (${dt} ms)"
        [ "$RC" != 0 ] && ok_fail=$((ok_fail + 1))
        printf '%s\n%s' "$OUT" "$ERR" | grep -Eq "/etc/aiod/aiod\.conf(:| line |, line )$line([^0-9]|$)" &&
            ok_msg=$((ok_msg + 1))
        [ "$dt" -lt 10000 ] && ok_fast=$((ok_fast + 1))
        st=$(q 'systemctl is-active aiod.socket')
        [ "$st" = active ] && ok_sock=$((ok_sock + 1))
        lab_log "S5 call $i: exit $RC in ${dt} ms, aiod.socket $st; $(short "$ERR" 160)"
    done
    if [ $ok_fail = 8 ]; then pass "8 calls of aioctl plugins all fail"; else
        fail "8 calls of aioctl plugins with a bad settings file" "8 failures" "$ok_fail failed; last $last_seen"
    fi
    if [ $ok_fast = 8 ]; then pass "each failing call returns within 10 s"; else
        fail "each failing call returns quickly" "8 within 10 s" "$ok_fast; last $last_seen"
    fi
    if [ $ok_msg = 8 ]; then pass "each failure names /etc/aiod/aiod.conf:$line"; else
        fail "each failure names the file and line" "/etc/aiod/aiod.conf:$line in the message, 8 times" \
            "$ok_msg times; last $last_seen"
    fi
    if [ $ok_sock = 8 ]; then pass "aiod.socket stays active through the 8 calls"; else
        fail "aiod.socket stays active" "active after each call" \
            "$ok_sock times; now '$(q 'systemctl is-active aiod.socket')'; $(short "$(q 'systemctl status aiod.socket --no-pager -n 5')" 500)"
    fi
    st=$(q 'systemctl show -p ActiveState --value aiod.socket')
    [ "$st" != failed ] || fail "aiod.socket never failed" "not failed" "$st"

    q "sed -i '${line}d' /etc/aiod/aiod.conf"
    ga alice plugins
    expect_re "after fixing the file (no reset-failed): aioctl plugins works" 0 '(^|[^a-z])demo\.[a-z]'
}

# doc_dropin NAME: the drop-in NAME of docs/deployment.md, taken from the
# doc's ini code block whose first line names the file
# /etc/systemd/system/aiod.service.d/NAME: its path, then the block.
doc_dropin() {
    python3 - "$SRC/docs/deployment.md" "$1" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
for m in re.finditer(r"```ini\n(.*?)```", text, re.S):
    body = m.group(1)
    first = body.splitlines()[0]
    p = re.match(r"#\s*(/etc/systemd/system/aiod\.service\.d/" + re.escape(sys.argv[2]) + r")\s*$", first)
    if p:
        print(p.group(1))
        sys.stdout.write(body)
        sys.exit(0)
sys.exit(1)
EOF
}

# doc_block DOC FIRST_RE: the first fenced code block of DOC (relative to
# the source tree) whose first line matches the Python regex FIRST_RE.
doc_block() {
    python3 - "$SRC/$1" "$2" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
for m in re.finditer(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M):
    body = m.group(1)
    if body and re.match(sys.argv[2], body.splitlines()[0]):
        sys.stdout.write(body)
        sys.exit(0)
sys.exit(1)
EOF
}

s6_net_dropin() {
    local d path port=8080
    d=$(doc_dropin override.conf) || {
        fail "the drop-in in docs/deployment.md" "an \`\`\`ini block starting '# /etc/systemd/system/aiod.service.d/…conf'" "none found"
        return
    }
    path=$(printf '%s\n' "$d" | head -n 1)
    if ! { mkdir -p "$LAB_ROOT$(dirname "$path")" && printf '%s\n' "$d" | tail -n +2 >"$LAB_ROOT$path"; }; then
        fail "writing the drop-in $path" "the file written" "an error (above)"
        return
    fi
    lab_log "S6: wrote $path from docs/deployment.md ($(wc -l <"$LAB_ROOT$path") lines)"
    g root systemctl daemon-reload
    expect_ok "systemctl daemon-reload with the documented drop-in"
    g root systemctl restart aiod
    if [ "$RC" = 0 ]; then pass "systemctl restart aiod with the documented drop-in"; else
        fail "systemctl restart aiod with the documented drop-in" "exit 0" \
            "$(seen); $(short "$(q 'journalctl -u aiod -n 6 -o cat --no-pager')" 600)"
    fi
    q 'mkdir -p /srv/www && echo aiod-lab-marker-7f3 > /srv/www/index.html'
    g root systemd-run --unit=lab-http --property=User=nobody \
        python3 -m http.server "$port" --bind 127.0.0.1 --directory /srv/www
    expect_ok "python3 -m http.server on 127.0.0.1:$port in the guest"
    if ! poll 100 0.1 eval "q 'curl -sf http://127.0.0.1:$port/' | grep -q aiod-lab-marker-7f3"; then
        fail "the test HTTP server answers" "the marker from curl" \
            "$(short "$(q 'journalctl -u lab-http -o cat --no-pager | tail -n 5')")"
        return
    fi
    # No call rule in the installed aiod.conf names net.*: every member of
    # group aiod may call it; alice is one.
    ga alice run net.fetch "http://127.0.0.1:$port/"
    expect_re "alice: aioctl run net.fetch http://127.0.0.1:$port/ works" 0 'aiod-lab-marker-7f3|"status": *200'
}

s7_default_socket() {
    local alice
    alice=$(uid_of alice)
    LAB_CMD_TIMEOUT=$AIOCTL_TIMEOUT g alice aioctl ps
    expect_ok "alice: aioctl ps (no -s, no AIOD_SOCKET, no XDG_RUNTIME_DIR) reaches the system daemon"
    g root loginctl enable-linger alice
    expect_ok "loginctl enable-linger alice"
    # The user manager is up when its private socket exists (there is no
    # session bus: the guest has no dbus-user-session, and systemctl --user
    # talks to the manager through that socket).
    if poll 300 0.1 eval "[ \"\$(q 'systemctl is-active user@$alice.service')\" = active ] && q 'test -S /run/user/$alice/systemd/private && echo y' | grep -q y"; then
        pass "alice's user manager runs (user@$alice.service, /run/user/$alice/systemd/private)"
    else
        fail "alice's user manager" "user@$alice.service active" "'$(q "systemctl is-active user@$alice.service")'"
        return
    fi
    LAB_CMD_TIMEOUT=$AIOCTL_TIMEOUT gs alice aioctl ps
    expect_ok "alice, XDG_RUNTIME_DIR set, no user instance: aioctl ps reaches the system daemon"
    gs alice systemctl --user enable --now aiod.socket
    expect_ok "alice: systemctl --user enable --now aiod.socket"
    LAB_CMD_TIMEOUT=$AIOCTL_TIMEOUT gs alice aioctl run proc.shell 'id -un'
    if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -qx alice; then
        pass "alice: aioctl reaches her own instance (proc.shell 'id -un' prints alice)"
    else
        fail "alice: aioctl run proc.shell 'id -un' with her user instance" "exit 0 and a line 'alice'" "$(seen)"
    fi
    # Her state directory (task ids, the store with her calls' arguments) is
    # hers alone, as the system instance's is.
    # Where systemd put it: the service's STATE_DIRECTORY.
    local pid dir
    pid=$(q "runuser -u alice -- env XDG_RUNTIME_DIR=/run/user/$(uid_of alice) systemctl --user show -p MainPID --value aiod.service")
    dir=$(q "tr '\\0' '\\n' </proc/$pid/environ | sed -n 's/^STATE_DIRECTORY=//p'")
    gs alice stat -c %a "$dir"
    if [ -n "$dir" ] && [ "$RC" = 0 ] && [ "$OUT" = 700 ]; then
        pass "alice's user instance: its state directory $dir is mode 0700"
    else
        fail "alice's user instance: mode of its state directory ('$dir', pid '$pid')" "700" "$(seen)"
    fi
}

# check_outcome WHAT ID UID STATE [KIND MESSAGE]: exactly one outcome record.
check_outcome() {
    local what=$1 id=$2 uid=$3 state=$4 kind=${5:-} msg=${6:-} rec
    if ! poll 50 0.2 eval 'rec=$(journal_outcomes "$id"); [ -n "$rec" ]'; then
        fail "journal: outcome of $what (task $id)" "one entry with TASK_ID=$id" \
            "none; $(short "$(q 'journalctl -u aiod -o cat --no-pager | tail -n 6')" 500)"
        return
    fi
    local v
    v=$(printf '%s\n' "$rec" | python3 -c '
import json, sys
id, uid, state, kind, msg = sys.argv[1:6]
recs = [json.loads(l) for l in sys.stdin if l.strip()]
bad = []
if len(recs) != 1:
    bad.append("%d outcome records" % len(recs))
for r in recs:
    for k, want in (("TASK_ID", id), ("OWNER_UID", uid), ("STATE", state)):
        if r.get(k) != want:
            bad.append("%s=%r (want %s)" % (k, r.get(k), want))
    if not r.get("FUNCTION"):
        bad.append("no FUNCTION")
    if kind and r.get("ERROR_KIND") != kind:
        bad.append("ERROR_KIND=%r (want %s)" % (r.get("ERROR_KIND"), kind))
    if msg and r.get("ERROR_MESSAGE") != msg:
        bad.append("ERROR_MESSAGE=%r (want %s)" % (r.get("ERROR_MESSAGE"), msg))
print("; ".join(bad))' "$id" "$uid" "$state" "$kind" "$msg")
    if [ -z "$v" ]; then
        pass "journal: one outcome record for $what (task $id) with TASK_ID, FUNCTION, OWNER_UID, STATE=$state${kind:+, ERROR_KIND, ERROR_MESSAGE}"
    else
        fail "journal: outcome record of $what (task $id)" \
            "one record, TASK_ID=$id FUNCTION OWNER_UID=$uid STATE=$state${kind:+ ERROR_KIND=$kind ERROR_MESSAGE=$msg}" \
            "$v; $(short "$rec" 400)"
    fi
}

s8_journal() {
    local alice ok fl de ok2 fl2 rec
    alice=$(uid_of alice)
    ga alice --json run demo.hello lab
    ok=$(json_task_id "$OUT")
    if [ "$RC" = 0 ] && [ -n "$ok" ]; then pass "alice: aioctl --json run demo.hello (task $ok)"; else
        fail "alice: aioctl --json run demo.hello" "exit 0 and a task id" "$(seen)"
    fi
    ga alice submit demo.fail ValueError lab-boom
    fl=$OUT
    ga alice await "$fl"
    expect_re "alice: a submitted demo.fail task fails (exit 1)" 1 'ValueError'
    ga alice detach demo.hello detached
    de=$OUT
    if [ "$RC" = 0 ] && [[ $de =~ ^[0-9]+$ ]]; then pass "alice: aioctl detach demo.hello (task $de)"; else
        fail "alice: aioctl detach demo.hello" "exit 0 and an id" "$(seen)"
    fi
    [ -n "$ok" ] && check_outcome "an attached success" "$ok" "$alice" "done"
    [[ $fl =~ ^[0-9]+$ ]] && check_outcome "a submitted failure" "$fl" "$alice" failed ValueError lab-boom
    [[ $de =~ ^[0-9]+$ ]] && check_outcome "a detached task" "$de" "$alice" "done"

    q 'echo "log_outcomes = failures" >> /etc/aiod/aiod.conf'
    g root systemctl reload aiod
    expect_ok "systemctl reload aiod with log_outcomes = failures"
    ga alice --json run demo.hello lab2
    ok2=$(json_task_id "$OUT")
    ga alice submit demo.fail KeyError lab-boom2
    fl2=$OUT
    ga alice await "$fl2"
    expect_rc "alice: second demo.fail fails" 1
    [[ $fl2 =~ ^[0-9]+$ ]] && check_outcome "a failure with log_outcomes = failures" "$fl2" "$alice" failed KeyError lab-boom2
    # The failure's record came after the success ended: by now the success's
    # would be there too.
    if [ -n "$ok2" ]; then
        rec=$(journal_outcomes "$ok2")
        if [ -z "$rec" ]; then pass "log_outcomes = failures: no outcome record for a success (task $ok2)"; else
            fail "log_outcomes = failures: success (task $ok2)" "no outcome record" "$(short "$rec" 400)"
        fi
    else
        fail "alice: aioctl --json run demo.hello after the reload" "a task id" "$(seen)"
    fi
}

s9_man_and_security() {
    local p
    for p in aioctl aiod "5 aiod.conf"; do
        # shellcheck disable=SC2086
        g alice env MANPAGER=cat MANWIDTH=80 man $p
        if [ "$RC" = 0 ] && [ "$(printf '%s' "$OUT" | wc -l)" -gt 10 ] &&
            printf '%s' "$OUT" | grep -q "${p#5 }"; then
            pass "man $p"
        else
            fail "MANPAGER=cat man $p" "exit 0 and the page" "$(seen)"
        fi
    done
    g root systemd-analyze security --no-pager aiod.service
    local x
    x=$(printf '%s\n' "$OUT" | sed -n 's/.*Overall exposure level for aiod.service: *\([0-9.]*\).*/\1/p' | tail -n 1)
    if [ -n "$x" ] && python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 2.5 else 1)' "$x"; then
        pass "systemd-analyze security aiod.service: exposure $x <= 2.5"
    else
        fail "systemd-analyze security aiod.service" "exposure <= 2.5" "'$x'; $(short "$(printf '%s' "$OUT" | tail -n 3)")"
    fi
}

s10_purge() {
    local id st
    ga alice submit demo.sleep 300 purge-me
    id=$OUT
    expect_ok "alice: a task runs before the purge"
    g root env DEBIAN_FRONTEND=noninteractive apt-get purge -y aiod
    expect_ok "apt-get purge -y aiod"
    g root pgrep -a -x aiod
    if [ "$RC" = 1 ]; then pass "no aiod process after the purge"; else
        fail "no aiod process after the purge" "pgrep finds none" "$(seen)"
    fi
    local u
    for u in aiod.socket aiod.service; do
        st=$(q "systemctl is-active $u")
        if [ "$st" != active ] && [ "$st" != activating ]; then pass "$u not active after the purge ($st)"; else
            fail "$u after the purge" "not active" "$st"
        fi
        st=$(q "systemctl is-enabled $u")
        if [ "$st" != enabled ]; then pass "$u not enabled after the purge (${st:-none})"; else
            fail "$u after the purge" "not enabled" "$st"
        fi
    done
    local f
    for f in /run/aiod /etc/aiod/aiod.conf /usr/bin/aiod /usr/bin/aioctl; do
        if [ "$(q "test -e $f || echo gone")" = gone ]; then pass "$f is gone after the purge"; else
            fail "$f after the purge" "gone" "$(q "ls -ld $f")"
        fi
    done
    for f in /etc/os-release /usr/bin /bin/sh /etc/passwd /root /home/alice; do
        if [ "$(q "test -e $f && echo here")" = here ] && [ -e "$LAB_ROOT$f" ]; then
            pass "$f still there after the purge"
        else
            fail "the guest's tree after the purge" "$f to exist" "missing"
        fi
    done
    st=$(q 'systemctl is-system-running')
    case $st in
    running | degraded) pass "the guest still runs after the purge ($st)" ;;
    *) fail "the guest after the purge" "running or degraded" "$st" ;;
    esac
}

# ------------------------------------------------------------ durable tasks

# jf KEY…: the value of each KEY (dotted for nested objects, as error.kind) in
# the JSON object on the first line of $OUT, one per line; empty when absent.
jf() {
    printf '%s\n' "$OUT" | python3 -c '
import json, sys
try:
    o = json.loads(sys.stdin.readline())
except ValueError:
    o = {}
for k in sys.argv[1:]:
    v = o
    for p in k.split("."):
        v = v.get(p) if isinstance(v, dict) else None
    print("" if v is None else v)' "$@"
}

# aiod.service's ActiveState, MainPID, NRestarts (and more when asked) on one line, sorted.
unit_props() {
    q "systemctl show -p ActiveState -p MainPID -p NRestarts ${*/#/-p } aiod.service" | sort | tr '\n' ' '
}

# is_id TEXT: TEXT is a task id.
is_id() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }

# The tasks alice leaves behind in S11 and S12 when aiod goes away: one that
# ended, one waiting for its --delay, one running.
DUR_DELAY=15
DUR_FIN=
DUR_FIN_OUT=
DUR_LATER=
DUR_RUN=
durable_before() {
    DUR_FIN='' DUR_LATER='' DUR_RUN=''
    ga alice submit demo.echo finished-before
    if [ "$RC" = 0 ] && is_id "$OUT"; then DUR_FIN=$OUT; else
        fail "alice: aioctl submit demo.echo finished-before" "exit 0 and an id" "$(seen)"
        return 1
    fi
    ga alice await "$DUR_FIN"
    DUR_FIN_OUT=$OUT
    expect_re "alice: aioctl await $DUR_FIN (demo.echo) before aiod goes away" 0 finished-before
    ga alice submit --delay "$DUR_DELAY" demo.echo later
    if [ "$RC" = 0 ] && is_id "$OUT"; then DUR_LATER=$OUT; else
        fail "alice: aioctl submit --delay $DUR_DELAY demo.echo later" "exit 0 and an id" "$(seen)"
        return 1
    fi
    ga alice submit demo.sleep 300 cut-off
    if [ "$RC" = 0 ] && is_id "$OUT"; then DUR_RUN=$OUT; else
        fail "alice: aioctl submit demo.sleep 300 cut-off" "exit 0 and an id" "$(seen)"
        return 1
    fi
    if poll 100 0.1 eval 'ga alice --json show "$DUR_RUN"; [ "$(jf state)" = running ]'; then
        pass "alice: task $DUR_RUN (demo.sleep 300) is running"
    else
        fail "alice: task $DUR_RUN (demo.sleep 300)" "state running" "$(seen)"
        return 1
    fi
    ga alice --json show "$DUR_LATER"
    if [ "$RC" = 0 ] && [ "$(jf state)" = pending ] && [ -n "$(jf next_run)" ]; then
        pass "alice: task $DUR_LATER (--delay $DUR_DELAY) is pending with a next run"
    else
        fail "alice: aioctl --json show $DUR_LATER" "state pending and a next_run" "$(seen)"
        return 1
    fi
}

# durable_after HOW MESSAGE_ERE: what must hold once aiod is back after HOW.
durable_after() {
    local how=$1 msg_re=$2 alice listed id n line
    alice=$(uid_of alice)
    ga alice --json ps --all
    listed=$(printf '%s\n' "$OUT" | python3 -c '
import json, sys
want = {int(a) for a in sys.argv[2:]}
seen = {}
for l in sys.stdin:
    try:
        o = json.loads(l)
    except ValueError:
        continue
    if o.get("task") in want:
        seen[o["task"]] = o.get("uid")
print(" ".join("%d:%s" % (t, seen.get(t, "missing")) for t in sorted(want)))' \
        "$alice" "$DUR_FIN" "$DUR_LATER" "$DUR_RUN" 2>/dev/null)
    if [ "$RC" = 0 ] && [ "$listed" = "$DUR_FIN:$alice $DUR_LATER:$alice $DUR_RUN:$alice" ]; then
        pass "after $how: aioctl --json ps --all lists tasks $DUR_FIN, $DUR_LATER, $DUR_RUN, owned by alice (uid $alice)"
    else
        fail "after $how: alice's tasks in aioctl --json ps --all" \
            "$DUR_FIN:$alice $DUR_LATER:$alice $DUR_RUN:$alice (task:uid)" "'$listed'; $(seen)"
    fi

    ga alice await --timeout 10 "$DUR_FIN"
    if [ "$RC" = 0 ] && [ "$OUT" = "$DUR_FIN_OUT" ]; then
        pass "after $how: aioctl await $DUR_FIN gives the same result"
    else
        fail "after $how: alice: aioctl await $DUR_FIN" "exit 0 and '$(short "$DUR_FIN_OUT")'" "$(seen)"
    fi

    ga alice --json show "$DUR_LATER"
    if [ "$RC" = 0 ] && [ "$(jf state)" = pending ] && [ "$(jf uid)" = "$alice" ]; then
        pass "after $how: task $DUR_LATER is still pending, owned by alice"
    else
        fail "after $how: aioctl --json show $DUR_LATER" "state pending, uid $alice" "$(seen)"
    fi
    ga alice ps
    line=$(printf '%s\n' "$OUT" | awk -v id="$DUR_LATER" '$1 == id')
    if [ "$RC" = 0 ] && printf '%s' "$line" | grep -Eq "^$DUR_LATER +waiting \(start (in|at) [^)]*\) +alice +.*demo\.echo later"; then
        pass "after $how: aioctl ps shows it: $(short "$line" 120)"
    else
        fail "after $how: aioctl ps, the line of task $DUR_LATER" "ID waiting (start in …) alice … demo.echo later" \
            "'$line'; $(seen)"
    fi

    ga alice await --timeout 20 "$DUR_RUN"
    expect_rc "after $how: aioctl await $DUR_RUN (the demo.sleep cut off) exits 1, failed" 1
    ga alice --json show "$DUR_RUN"
    if [ "$RC" = 0 ] && [ "$(jf state)" = failed ] && [ "$(jf error.kind)" = Interrupted ] &&
        [ "$(jf uid)" = "$alice" ] && jf error.message | grep -Eq -- "$msg_re"; then
        pass "after $how: task $DUR_RUN ended failed, Interrupted: $(short "$(jf error.message)" 200)"
    else
        fail "after $how: aioctl --json show $DUR_RUN" \
            "state failed, uid $alice, error kind Interrupted, message /$msg_re/" "$(seen)"
    fi

    ga alice submit demo.echo new-after
    n=$OUT
    if [ "$RC" = 0 ] && is_id "$n" && [ "$n" -gt "$DUR_FIN" ] && [ "$n" -gt "$DUR_LATER" ] &&
        [ "$n" -gt "$DUR_RUN" ]; then
        pass "after $how: new id $n is above the old ones ($DUR_FIN, $DUR_LATER, $DUR_RUN)"
    else
        fail "after $how: alice's new task id" "an id above $DUR_RUN" "$(seen)"
    fi

    # Its next run was stored at the submit: it starts DUR_DELAY s after
    # being created, aiod having gone away meanwhile or not.
    ga alice await --timeout 40 "$DUR_LATER"
    expect_re "after $how: the delayed task $DUR_LATER runs (aioctl await prints later)" 0 later
    ga alice --json show "$DUR_LATER"
    local dt
    dt=$(printf '%s\n' "$OUT" | python3 -c '
import datetime, json, sys
o = json.loads(sys.stdin.readline())
c, s = (datetime.datetime.fromisoformat(o[k]) for k in ("created", "started"))
print("%.1f" % (s - c).total_seconds())' 2>/dev/null)
    if [ -n "$dt" ] && python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) - 0.1 else 1)' \
        "$dt" "$DUR_DELAY"; then
        pass "after $how: task $DUR_LATER started $dt s after its submit (--delay $DUR_DELAY)"
    else
        fail "after $how: start of task $DUR_LATER" "at least $DUR_DELAY s after it was created" "'$dt'; $(seen)"
    fi

    # The start-up line (docs/deployment.md) of the daemon now running.
    lab_as root journalctl --sync >/dev/null 2>&1
    line=$(q "journalctl -u aiod.service -o cat --no-pager _PID=$(main_pid)" | grep 'tasks restored' | tail -n 1)
    if printf '%s' "$line" | grep -Eq 'state store /var/lib/aiod/tasks\.db: 3 tasks restored in [0-9.]+ ?s \(1 pending, 1 finished, 1 interrupted and failed'; then
        pass "after $how: the journal says $(short "$line" 200)"
    else
        fail "after $how: aiod's start-up line in the journal" \
            "state store /var/lib/aiod/tasks.db: 3 tasks restored in S s (1 pending, 1 finished, 1 interrupted and failed, …)" "'$line'"
    fi
}

s11_restart_keeps_tasks() {
    local oldpid newpid
    durable_before || return
    oldpid=$(main_pid)
    g root systemctl restart aiod
    expect_ok "systemctl restart aiod"
    newpid=$(main_pid)
    if [[ $newpid =~ ^[1-9][0-9]*$ ]] && [ "$newpid" != "$oldpid" ]; then
        pass "a new daemon runs (pid $oldpid, then $newpid)"
    else
        fail "a new daemon after systemctl restart" "MainPID other than $oldpid" "'$newpid'"
    fi
    durable_after "systemctl restart aiod" '^aiod stopped at [^(]* while this task ran'
}

s12_kill_keeps_tasks() {
    local oldpid st
    durable_before || return
    oldpid=$(main_pid)
    g root kill -KILL "$oldpid"
    expect_ok "kill -9 of aiod's MainPID $oldpid"
    # Restart=on-failure brings it back by itself (RestartSec=1s): no client
    # call before it is active again, so that socket activation cannot be
    # what started it.
    if poll 300 0.1 eval 'st=$(unit_props); [[ $st =~ ActiveState=active\ MainPID=([1-9][0-9]*)\ NRestarts=1 ]] && [ "${BASH_REMATCH[1]}" != "$oldpid" ]'; then
        pass "systemd restarted aiod by itself (NRestarts=1, active, MainPID ${BASH_REMATCH[1]})"
    else
        fail "systemd restarts aiod after kill -9" "ActiveState=active, NRestarts=1, a new MainPID" "'$st'"
        return
    fi
    durable_after "kill -9" '^aiod stopped \(it was killed or crashed\) while this task ran'
}

s13_state_files() {
    local id st pid f
    ga alice submit demo.echo stored-marker-5d1
    id=$OUT
    ga alice await "$id"
    expect_re "alice: a submitted demo.echo (task $id)" 0 stored-marker-5d1
    st=$(q 'systemctl show -p User --value aiod.service')
    pid=$(main_pid)
    if [ "$st" = aiod ] && [ "$(q "ps -o user= -p $pid")" = aiod ]; then
        pass "aiod.service runs as User=aiod (pid $pid)"
    else
        fail "the daemon's user" "User=aiod and pid $pid owned by aiod" "User='$st'; $(q "ps -o user=,pid= -p $pid")"
    fi
    lab_log "S13: $(q 'ls -la /var/lib/aiod' | tr '\n' '|')"
    st=$(q 'stat -c "%a %U %G" /var/lib/aiod')
    if [ "$st" = "700 aiod aiod" ]; then pass "/var/lib/aiod: mode 0700, owner aiod:aiod"; else
        fail "/var/lib/aiod" "700 aiod aiod" "'$st'"
    fi
    st=$(q 'stat -c "%a %U" /var/lib/aiod/tasks.db')
    if [ "$st" = "600 aiod" ]; then pass "/var/lib/aiod/tasks.db: mode 0600, owner aiod"; else
        fail "/var/lib/aiod/tasks.db" "600 aiod" "'$st'"
    fi
    st=$(q 'find /var/lib/aiod -mindepth 1 \( -perm /077 -o ! -user aiod \) -printf "%m %u %p\n"')
    if [ -z "$st" ] && [ -n "$(q 'ls -A /var/lib/aiod')" ]; then
        pass "every file in /var/lib/aiod is aiod's, with no group or other access ($(q 'ls -A /var/lib/aiod' | tr '\n' ' '))"
    else
        fail "files in /var/lib/aiod" "all owned by aiod, no group or other bits" "'$(short "$st")'"
    fi
    st=$(q 'head -c 15 /var/lib/aiod/tasks.db')
    if [ "$st" = "SQLite format 3" ]; then pass "tasks.db is an SQLite database"; else
        fail "the header of /var/lib/aiod/tasks.db" "SQLite format 3" "'$(short "$st")'"
    fi
    # The argument of alice's task is in the store (the database or its
    # write-ahead log): the task was written down.
    if q 'cat /var/lib/aiod/tasks.db*' | grep -aq stored-marker-5d1; then
        pass "alice's task (its argument) is in /var/lib/aiod/tasks.db*"
    else
        fail "alice's task in the store" "stored-marker-5d1 in /var/lib/aiod/tasks.db*" "absent"
    fi
    for f in alice carol; do
        gsh "$f" 'cat /var/lib/aiod/tasks.db >/dev/null'
        expect_re "$f cannot read /var/lib/aiod/tasks.db" 1 'permission denied'
        gsh "$f" 'ls /var/lib/aiod'
        expect_re "$f cannot list /var/lib/aiod" 2 'permission denied'
    done
}

# damage_store ROUND: overwrite the stopped daemon's store with text that is
# not a database.
damage_store() {
    g root systemctl stop aiod
    expect_ok "$1: systemctl stop aiod"
    lab_log "$SCEN $1: before the damage: $(q 'ls -la /var/lib/aiod' | tr '\n' '|')"
    gsh root 'yes "this is not an SQLite database" | head -c 65536 >/var/lib/aiod/tasks.db &&
              cp /var/lib/aiod/tasks.db /root/garbage'
    expect_ok "$1: /var/lib/aiod/tasks.db overwritten with 64 KiB of text"
}

# How many times aiod said its store is damaged (once per start).
damaged_lines() { q 'journalctl -u aiod.service -o cat --no-pager | grep -c "tasks.db is damaged"'; }

# refused_start ROUND: systemctl start fails with 65, once, and says what to do.
refused_start() {
    local st r=$1
    g root systemctl start aiod
    expect_fail_rc "$r: systemctl start aiod with a damaged store fails"
    st=$(unit_props ExecMainStatus)
    if [[ $st =~ ActiveState=failed\ ExecMainStatus=65\ MainPID=0\ NRestarts=0 ]]; then
        pass "$r: aiod.service failed with exit status 65, not restarted ($st)"
    else
        fail "$r: aiod.service after the refused start" "ActiveState=failed ExecMainStatus=65 NRestarts=0" "'$st'"
    fi
    # RestartPreventExitStatus=65: no restart comes. There is no event for
    # something that does not happen: watch for 4 s, four times RestartSec.
    if poll 40 0.1 eval '[[ ! $(unit_props) =~ ActiveState=failed\ MainPID=0\ NRestarts=0 ]]'; then
        fail "$r: aiod.service stays failed (no restart loop)" "failed, NRestarts=0 for 4 s" "'$(unit_props)'"
    else
        pass "$r: aiod.service stays failed for 4 s, NRestarts=0 (RestartPreventExitStatus=65)"
    fi
    g root systemctl status --no-pager -l -n 20 aiod
    lab_log "$SCEN $r: systemctl status: $(printf '%s\n' "$OUT" | grep -E 'Active:|Main PID:|Status:' | tr '\n' '|')"
    if [ "$RC" = 3 ] && printf '%s' "$OUT" | grep -q 'the state store /var/lib/aiod/tasks.db is damaged' &&
        printf '%s' "$OUT" | grep -q -- '--state-recover=fresh'; then
        pass "$r: systemctl status aiod (exit 3) shows 'the state store /var/lib/aiod/tasks.db is damaged' and --state-recover=fresh"
    else
        fail "$r: systemctl status aiod" "exit 3, 'the state store /var/lib/aiod/tasks.db is damaged … --state-recover=fresh'" \
            "$(seen)"
    fi
}

s14_damaged_store() {
    local id n d path st before
    ga alice submit demo.echo before-damage
    id=$OUT
    ga alice await "$id"
    expect_re "alice: task $id (demo.echo) before the damage" 0 before-damage
    is_id "$id" || return
    damage_store "round 1"
    refused_start "round 1"

    # A client's call starts the unit through aiod.socket: it must get an
    # answer, and leave neither the socket failed nor the unit starting over
    # and over (each start logs the "is damaged" line once).
    local t0 dt mid
    before=$(damaged_lines)
    t0=$(date +%s%N)
    ga alice ps
    dt=$((($(date +%s%N) - t0) / 1000000))
    mid=$(damaged_lines)
    lab_log "S14: aioctl ps: exit $RC in $dt ms; $((mid - before)) start(s) meanwhile; $(short "$ERR" 200)"
    if [ "$RC" != 0 ] && [ "$RC" != 124 ] && [ "$dt" -lt 10000 ]; then
        pass "alice: aioctl ps while the store is damaged fails within 10 s (exit $RC in $dt ms: $(short "$ERR" 200))"
    else
        fail "alice: aioctl ps while the store is damaged" "a non-zero exit within 10 s" "$(seen) after $dt ms"
    fi
    if [ $((mid - before)) -le 1 ]; then
        pass "that call started aiod at most once ($((mid - before)))"
    else
        fail "one aioctl call starts aiod at most once" "at most one more 'is damaged' line in the journal" \
            "$((mid - before)) more in $dt ms; $(unit_props)"
    fi
    # Again no event for what must not happen: 4 s without a new start.
    if poll 40 0.1 eval '[ "$(damaged_lines)" -gt "$mid" ]'; then
        fail "no start loop once the call has returned" "no more 'is damaged' lines for 4 s" \
            "$(($(damaged_lines) - mid)) more within 4 s; $(unit_props)"
    else
        pass "no start loop once the call has returned (no new start in 4 s)"
    fi
    st=$(q 'systemctl is-active aiod.socket')
    if [ "$st" = active ]; then pass "aiod.socket still active"; else
        fail "aiod.socket after a call while the store is damaged" "active" \
            "'$st'; $(q 'systemctl show -p Result aiod.socket')"
    fi

    # Repair 1: the drop-in of docs/deployment.md, once.
    d=$(doc_dropin recover.conf) || {
        fail "the recovery drop-in in docs/deployment.md" "an \`\`\`ini block starting '# /etc/systemd/system/aiod.service.d/recover.conf'" "none found"
        return
    }
    path=$(printf '%s\n' "$d" | head -n 1)
    mkdir -p "$LAB_ROOT$(dirname "$path")" && printf '%s\n' "$d" | tail -n +2 >"$LAB_ROOT$path"
    g root systemctl daemon-reload
    g root systemctl start aiod
    expect_ok "systemctl start aiod with the documented $path (--state-recover=fresh)"
    st=$(q 'for f in /var/lib/aiod/tasks.db.damaged-*; do cmp -s "$f" /root/garbage && echo "$f"; done')
    if [[ $st =~ ^/var/lib/aiod/tasks\.db\.damaged-[0-9]{8}-[0-9]{6}$ ]]; then
        pass "the damaged store was moved aside as $st"
        if q 'journalctl -u aiod.service -o cat --no-pager' | grep -qF "moved aside as $st; starting with an empty store"; then
            pass "the journal says the damaged store was moved aside as $st and aiod started with an empty one"
        else
            fail "the journal says where the damaged store was moved" "'… is damaged … moved aside as $st; starting with an empty store'" \
                "$(short "$(q 'journalctl -u aiod.service -o cat --no-pager | tail -n 5')" 500)"
        fi
    else
        fail "the damaged store moved aside" "/var/lib/aiod/tasks.db.damaged-YYYYmmdd-HHMMSS with its bytes" \
            "'$st'; $(q 'ls -la /var/lib/aiod' | tr '\n' '|')"
    fi
    rm -f "$LAB_ROOT$path"
    g root sh -c 'systemctl daemon-reload && systemctl restart aiod'
    expect_ok "without the drop-in again: systemctl restart aiod"
    ga alice await --timeout 10 "$id"
    expect_rc "alice: aioctl await $id (from the lost store) says no such task (exit 2)" 2
    ga alice submit demo.echo after-repair
    n=$OUT
    if [ "$RC" = 0 ] && is_id "$n" && [ "$n" -gt "$id" ]; then
        pass "after the repair: new id $n > $id (the id counter is not in tasks.db)"
    else
        fail "after the repair: alice's new task id" "an id above $id" "$(seen)"
    fi
    ga alice await "$n"
    expect_re "after the repair: aioctl await $n" 0 after-repair

    # Repair 2: the store moved aside by hand, as the message says.
    damage_store "round 2"
    refused_start "round 2"
    g root sh -c 'cd /var/lib/aiod && for f in tasks.db tasks.db-wal tasks.db-shm; do
                      if [ -e $f ]; then mv $f $f.bad || exit 1; fi; done'
    expect_ok "round 2: mv /var/lib/aiod/tasks.db{,-wal,-shm} aside (docs/deployment.md)"
    g root systemctl start aiod
    expect_ok "round 2: systemctl start aiod with the store moved aside"
    ga alice submit demo.echo after-move
    n=$OUT
    ga alice await "$n"
    expect_re "round 2: after moving the store aside, alice's submit and await work" 0 after-move
}

# ------------------------------------------------------------ cluster queues

# The first cluster id (AIOD_CLUSTER_ID_BASE, 2^48): every queued task's id is
# at least this, every local one below.
CLUSTER_ID_BASE=281474976710656
# The drop-in a cluster host needs (aiod.service has no network), as the
# package installs it.
CLUSTER_DROPIN_DOC=/usr/share/doc/aiod/aiod-cluster.conf.example

# is_cluster_id TEXT: TEXT is a cluster task id.
is_cluster_id() { is_id "$1" && [ "${#1}" -le 19 ] && [ "$1" -ge "$CLUSTER_ID_BASE" ]; }

# The password of Redis's default user (requirepass), which the suite's
# redis-cli uses; aiod uses the ACL user aiod.
REDIS_DEFAULT_PW=
# rcli ARGS…: redis-cli --raw ARGS in the guest as Redis's default user.
rcli() { q "REDISCLI_AUTH='$REDIS_DEFAULT_PW' redis-cli --raw $*"; }

# serving HOST: Redis lists HOST among the hosts serving demo.sleep on q1.
serving() { rcli zrange aiod:serve:q1:demo.sleep 0 -1 | grep -qx "$1"; }

# queue_submit USER SECONDS: USER's `aioctl submit --queue q1 demo.sleep
# SECONDS`; the id in QID when it printed a cluster id.
QID=
queue_submit() {
    QID=
    ga "$1" submit --queue q1 demo.sleep "$2"
    if [ "$RC" = 0 ] && is_cluster_id "$OUT"; then QID=$OUT; else return 1; fi
}

s15_cluster() {
    local alice id owned back killed st path t0 dt oldpid
    alice=$(uid_of alice)

    # Redis as Debian runs it (redis-server.service), set up as
    # docs/cluster.md says, its blocks read from the doc: its redis.conf lines
    # (append-only file, noeviction; Debian's own bind 127.0.0.1 stays, Redis
    # being on this machine) and its ACL user aiod with a password. The
    # default user keeps its permissions, protected with requirepass as the
    # doc asks (the suite's redis-cli is it), so that aiod can only be in
    # as aiod.
    local rconf acl pw
    rconf=$(doc_block docs/cluster.md '# A private address' | grep -Ev '^(#|bind |$)')
    acl=$(doc_block docs/cluster.md 'user aiod on >A-LONG-RANDOM-PASSWORD ')
    if [ -z "$rconf" ] || [ -z "$acl" ]; then
        fail "the Redis settings of docs/cluster.md" \
            "a block starting '# A private address' and one starting 'user aiod on >A-LONG-RANDOM-PASSWORD'" \
            "'$(short "$rconf")' and '$(short "$acl")'"
        return
    fi
    pw=lab-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    REDIS_DEFAULT_PW=lab-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    acl=${acl//A-LONG-RANDOM-PASSWORD/$pw}
    lab_log "S15: redis.conf gets: $(printf '%s' "$rconf" | tr '\n' '|')"
    printf '%s\n' "$rconf" "$acl" "requirepass $REDIS_DEFAULT_PW" >>"$LAB_ROOT/etc/redis/redis.conf"
    g root systemctl restart redis-server
    expect_ok "redis-server.service restarted with docs/cluster.md's redis.conf lines and ACL user aiod"
    st=$(rcli config get appendonly | tail -n 1; rcli acl list | grep -c "^user aiod on ")
    if [ "$st" = "yes"$'\n'"1" ]; then pass "Redis answers on 127.0.0.1:6379: appendonly yes, ACL user aiod"; else
        fail "Redis after the restart (redis-cli config get appendonly; acl list)" "yes, and the user aiod" \
            "'$(short "$st")'; $(short "$(q 'systemctl status --no-pager -n 5 redis-server')" 500)"
        return
    fi

    # aiod as a cluster host, as docs/cluster.md says: the password file, the
    # cluster keys in /etc/aiod/aiod.conf, `systemctl enable aiod.service`,
    # and the unit's drop-in from the doc (IPAddressAllow=localhost, as it says
    # for a Redis on the same machine). The keys first: the installed unit
    # alone gives the daemon no network, so Redis must be out of its reach
    # until the drop-in is there.
    gsh root "printf 'aiod %s\n' '$pw' | install -m 0400 -o aiod -g aiod /dev/stdin /etc/aiod/redis-password"
    expect_ok "the password file /etc/aiod/redis-password (0400 aiod:aiod, install as the doc shows)"
    # alice is in the group aiod (she uses the socket): the password, which
    # opens everything under aiod: in Redis, must stay out of her reach.
    g alice cat /etc/aiod/redis-password
    expect_fail_rc "a member of the group aiod (alice) cannot read the Redis password file"
    q 'printf "%s\n" "cluster = redis://127.0.0.1:6379" "cluster_password_file = /etc/aiod/redis-password" \
           "cluster_queues = q1" "cluster_host = lab1" "cluster_visibility_ms = 2000" >>/etc/aiod/aiod.conf'
    g root aiod --config /etc/aiod/aiod.conf --check-config
    expect_ok "aiod --config /etc/aiod/aiod.conf --check-config with the cluster keys"
    g root systemctl enable aiod.service
    expect_ok "systemctl enable aiod.service (a worker host works its queues from boot)"
    g root systemctl restart aiod
    expect_ok "systemctl restart aiod with the cluster keys and no drop-in"
    ga alice submit --queue q1 demo.sleep 0
    expect_re "without the drop-in (the unit's sandbox: no network), a queue submit fails (exit 3), Redis unreachable" 3 \
        'Redis at 127\.0\.0\.1:6379 is unreachable'
    local d
    d=$(doc_block docs/cluster.md '# */etc/systemd/system/aiod\.service\.d/[A-Za-z0-9_.-]+\.conf *$')
    path=$(printf '%s\n' "$d" | head -n 1 | sed 's/^# *//; s/ *$//')
    d=$(printf '%s\n' "$d" | tail -n +2 | sed 's/^IPAddressAllow=.*/IPAddressAllow=localhost/')
    if [ -z "$path" ] || [ "$(printf '%s\n' "$d" | grep -c '^IPAddressAllow=localhost$')" != 1 ]; then
        fail "the drop-in of docs/cluster.md" \
            "an \`\`\`ini block starting '# /etc/systemd/system/aiod.service.d/….conf' with one IPAddressAllow= line" \
            "'$(short "$path")'; '$(short "$d")'"
        return
    fi
    mkdir -p "$LAB_ROOT$(dirname "$path")" && printf '%s\n' "$d" >"$LAB_ROOT$path"
    lab_log "S15: wrote $path from docs/cluster.md: $(grep -Ev '^(#|$)' "$LAB_ROOT$path" | tr '\n' '|')"
    # The example the package installs says the same.
    st=$(q "grep -Ev '^(#|\$)' $CLUSTER_DROPIN_DOC")
    if [ -n "$st" ] && [ "$st" = "$(grep -Ev '^(#|$)' "$LAB_ROOT$path")" ]; then
        pass "the package's $CLUSTER_DROPIN_DOC sets what the drop-in of docs/cluster.md sets"
    else
        fail "the package's $CLUSTER_DROPIN_DOC" "the settings of docs/cluster.md's drop-in ($(grep -Ev '^(#|$)' "$LAB_ROOT$path" | tr '\n' '|'))" \
            "'$(short "$st")'"
    fi
    g root sh -c 'systemctl daemon-reload && systemctl restart aiod'
    if [ "$RC" = 0 ]; then pass "with $path: systemctl daemon-reload && systemctl restart aiod"; else
        fail "systemctl restart aiod as a cluster host" "exit 0" \
            "$(seen); $(short "$(q 'journalctl -u aiod -n 8 -o cat --no-pager')" 600)"
        return
    fi
    st="cluster: connected to Redis at 127.0.0.1:6379 as host lab1"
    if poll 100 0.1 eval 'lab_as root journalctl --sync >/dev/null 2>&1; q "journalctl -u aiod.service -o cat --no-pager _PID=$(main_pid)" | grep -qF "$st"'; then
        pass "the journal says '$st'"
    else
        fail "aiod's journal as a cluster host" "'$st'" \
            "$(short "$(q 'journalctl -u aiod -n 8 -o cat --no-pager')" 600)"
    fi
    if poll 100 0.1 serving lab1; then
        pass "aiod (cluster_host = lab1) serves demo.sleep on q1 (aiod:serve:q1:demo.sleep in Redis)"
    else
        fail "aiod serving q1 in Redis" "lab1 in aiod:serve:q1:demo.sleep" \
            "'$(rcli zrange aiod:serve:q1:demo.sleep 0 -1)'; $(short "$(q 'journalctl -u aiod -n 8 -o cat --no-pager')" 600)"
        return
    fi

    # Every connection but redis-cli's own is aiod's, as the ACL user aiod
    # (the password file was read and used).
    st=$(rcli client list | grep -v ' cmd=client|list ' | sed -n 's/.* user=\([^ ]*\) .*/\1/p' | sort | uniq -c |
        awk '{print $2 "x" $1}' | tr '\n' ' ')
    if [[ $st =~ ^aiodx[1-9][0-9]*\ $ ]]; then
        pass "aiod's connections to Redis are the ACL user aiod's ($st)"
    else
        fail "the users of aiod's connections to Redis (CLIENT LIST)" "aiod only" "'$st'"
    fi

    g root systemd-analyze security --no-pager aiod.service
    st=$(printf '%s\n' "$OUT" | sed -n 's/.*Overall exposure level for aiod.service: *\([0-9.]*\).*/\1/p' | tail -n 1)
    if [ -n "$st" ] && python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 2.5 else 1)' "$st"; then
        pass "systemd-analyze security aiod.service with the cluster drop-in: exposure $st <= 2.5"
    else
        fail "systemd-analyze security aiod.service with the cluster drop-in" "exposure <= 2.5" \
            "'$st'; $(short "$(printf '%s' "$OUT" | tail -n 3)")"
    fi

    # A queued task, end to end, as alice.
    if queue_submit alice 0.1; then
        id=$QID
        pass "alice: aioctl submit --queue q1 demo.sleep 0.1 prints a cluster id ($id >= $CLUSTER_ID_BASE)"
    else
        fail "alice: aioctl submit --queue q1 demo.sleep 0.1" "exit 0 and an id >= $CLUSTER_ID_BASE" "$(seen)"
        return
    fi
    ga alice await "$id"
    if [ "$RC" = 0 ] && [ "$OUT" = null ]; then pass "alice: aioctl await $id prints null"; else
        fail "alice: aioctl await $id" "exit 0 and 'null'" "$(seen)"
    fi
    ga alice show "$id"
    if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -qx 'host: lab1' &&
        printf '%s\n' "$OUT" | grep -qx 'queue: q1' &&
        printf '%s\n' "$OUT" | grep -Eq "^owner: alice \(uid ${alice}[,)]"; then
        pass "alice: aioctl show $id: queue: q1, host: lab1, owner alice (uid $alice)"
    else
        fail "alice: aioctl show $id" "lines 'queue: q1', 'host: lab1', 'owner: alice (uid $alice, …'" "$(seen)"
    fi
    ga mallory submit --queue q1 demo.sleep 0
    if [ "$RC" = 3 ] || { [ "$RC" != 0 ] && printf '%s' "$ERR" | grep -qi 'permission denied'; }; then
        pass "mallory (not in group aiod) cannot submit to q1 (exit $RC)"
    else
        fail "mallory: aioctl submit --queue q1 demo.sleep 0" "exit 3 or 'permission denied'" "$(seen)"
    fi

    # Another user's queued task: bob may not await it, carol (aiodadm) may.
    if queue_submit alice 5; then owned=$QID; else
        fail "alice: aioctl submit --queue q1 demo.sleep 5" "exit 0 and a cluster id" "$(seen)"
        return
    fi
    ga bob await "$owned"
    expect_re "bob: aioctl await $owned (alice's queued task) is refused, naming its owner" 2 \
        "task $owned belongs to uid $alice"
    ga carol await "$owned"
    if [ "$RC" = 0 ] && [ "$OUT" = null ]; then
        pass "carol (aiodadm): aioctl await $owned (alice's) prints null"
    else
        fail "carol (aiodadm): aioctl await $owned" "exit 0 and 'null'" "$(seen)"
    fi

    # Redis down: queue submits fail, saying so; local tasks go on.
    g root systemctl stop redis-server
    expect_ok "systemctl stop redis-server"
    ga alice submit --queue q1 demo.sleep 0
    expect_re "Redis stopped: alice's aioctl submit --queue q1 fails (exit 3), Redis unreachable" 3 \
        'Redis at 127\.0\.0\.1:6379 is unreachable'
    ga alice run demo.sleep 0 local
    if [ "$RC" = 0 ] && [ "$OUT" = '"local"' ]; then
        pass "Redis stopped: alice's aioctl run demo.sleep 0 (a local task) works"
    else
        fail "Redis stopped: alice: aioctl run demo.sleep 0 local" "exit 0 and '\"local\"'" "$(seen)"
    fi
    g root systemctl start redis-server
    expect_ok "systemctl start redis-server"
    # The host reconnects by itself: backoff up to 5 s, plus a connect given
    # up after 2 s.
    t0=$(date +%s%N)
    if poll 100 0.2 queue_submit alice 0; then
        back=$QID
        dt=$((($(date +%s%N) - t0) / 1000000))
        if [ "$dt" -le 10000 ]; then
            pass "Redis started again: a queue submit works after $dt ms (task $back)"
        else
            fail "Redis started again: a queue submit works soon" "within 10 s (5 s backoff + 2 s connect)" \
                "after $dt ms"
        fi
    else
        fail "Redis started again: alice: aioctl submit --queue q1 demo.sleep 0" "exit 0 and a cluster id" \
            "$(seen); $(short "$(q 'journalctl -u aiod -n 6 -o cat --no-pager')" 500)"
        return
    fi
    if [ "$back" -gt "$owned" ]; then
        pass "the new id $back is above the ones before Redis restarted (the id counter survived it)"
    else
        fail "the id after Redis restarted" "above $owned" "$back"
    fi
    ga alice await "$back"
    if [ "$RC" = 0 ] && [ "$OUT" = null ]; then pass "alice: aioctl await $back (after Redis restarted) prints null"; else
        fail "alice: aioctl await $back" "exit 0 and 'null'" "$(seen)"
    fi

    # kill -9 of the host while it runs a queued task: systemd restarts it,
    # it claims its own pending entry, and the task ends Interrupted (the
    # default on_interrupt = fail), not run again.
    st=$(q 'systemctl show -p Restart --value aiod.service')
    if [ "$st" = on-failure ]; then pass "aiod.service has Restart=on-failure"; else
        fail "aiod.service's Restart=" "on-failure" "'$st'"
    fi
    if queue_submit alice 30; then killed=$QID; else
        fail "alice: aioctl submit --queue q1 demo.sleep 30" "exit 0 and a cluster id" "$(seen)"
        return
    fi
    if poll 100 0.1 eval 'ga alice --json show "$killed"; [ "$(jf state)" = running ] && [ "$(jf host)" = lab1 ]'; then
        pass "alice: task $killed (demo.sleep 30) is running on lab1"
    else
        fail "alice: task $killed (demo.sleep 30)" "state running, host lab1" "$(seen)"
        return
    fi
    oldpid=$(main_pid)
    t0=$(date +%s%N)
    g root systemctl kill -s SIGKILL aiod
    expect_ok "systemctl kill -s SIGKILL aiod (pid $oldpid)"
    if poll 300 0.1 eval 'st=$(unit_props); [[ $st =~ ActiveState=active\ MainPID=([1-9][0-9]*)\ NRestarts=1 ]] && [ "${BASH_REMATCH[1]}" != "$oldpid" ]'; then
        pass "systemd restarted aiod by itself (NRestarts=1, active, MainPID ${BASH_REMATCH[1]})"
    else
        fail "systemd restarts aiod after kill -9" "ActiveState=active, NRestarts=1, a new MainPID" "'$st'"
        return
    fi
    ga alice await --timeout 30 "$killed"
    dt=$((($(date +%s%N) - t0) / 1000000))
    expect_rc "after kill -9: alice's aioctl await $killed exits 1 (failed)" 1
    if [ "$RC" = 1 ] && [ "$dt" -lt 25000 ]; then
        pass "after kill -9: task $killed ended $dt ms after the kill (not run again for 30 s)"
    else
        fail "after kill -9: the end of task $killed" "within 25 s of the kill" "after $dt ms; $(seen)"
    fi
    ga alice --json show "$killed"
    if [ "$RC" = 0 ] && [ "$(jf state)" = failed ] && [ "$(jf error.kind)" = Interrupted ] &&
        [ "$(jf uid)" = "$alice" ] && jf error.message | grep -q lab1; then
        pass "after kill -9: task $killed failed, Interrupted: $(short "$(jf error.message)" 200)"
    else
        fail "after kill -9: aioctl --json show $killed" \
            "state failed, uid $alice, error kind Interrupted, a message naming lab1" "$(seen)"
    fi
    if queue_submit alice 0; then
        ga alice await "$QID"
        if [ "$RC" = 0 ] && [ "$OUT" = null ]; then
            pass "after kill -9: a new queued task $QID runs (await prints null)"
        else
            fail "after kill -9: alice: aioctl await $QID" "exit 0 and 'null'" "$(seen)"
        fi
    else
        fail "after kill -9: alice: aioctl submit --queue q1 demo.sleep 0" "exit 0 and a cluster id" "$(seen)"
    fi

    # Since Redis started again: its ACL refused aiod nothing (a command, or
    # one its scripts call), and the scripts were called by digest, which
    # needs the ACL's +script|load and +evalsha (without them aiod falls back
    # to sending each script's whole text with every call).
    st=$(rcli acl log | head -c 400)
    if [ -z "$st" ]; then pass "Redis's ACL LOG is empty: docs/cluster.md's ACL user refused aiod nothing"; else
        fail "Redis's ACL LOG since Redis started again" "empty" "'$(printf '%s' "$st" | tr '\n' ' ')'"
    fi
    st=$(rcli info commandstats | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p')
    if [ "${st:-0}" -gt 0 ]; then pass "aiod calls its scripts by digest (EVALSHA, $st calls since Redis started again)"; else
        fail "INFO commandstats: cmdstat_evalsha" "calls > 0" "'${st:-none}'"
    fi
}

# A plugin shipped in a package of its own, built on the host from
# tests/deploy/thirdparty.c the way another project would: aiod's dpkg
# trigger (interest in the plugin directory) has the running daemon re-read
# the directory when the package is installed and when it is removed, with
# no restart: the same daemon, and a task that was running runs on.
s16_plugin_package() {
    local dir plugdir arch oldpid id
    plugdir=$(q 'dpkg -L aiod' | grep '/aiod/plugins$' | head -n 1)
    if [ -z "$plugdir" ]; then
        fail "aiod's plugin directory (dpkg -L aiod)" "a path ending in /aiod/plugins" "none"
        return
    fi
    dir=$WORK/thirdparty
    rm -rf "$dir" && mkdir -p "$dir/pkg/DEBIAN" "$dir/pkg$plugdir"
    if ! gcc -shared -fPIC -O2 -Wall -Wextra -Werror -I"$SRC/daemon/include" \
        -o "$dir/pkg$plugdir/thirdparty.so" "$HERE/thirdparty.c" 2>"$dir/cc.log"; then
        fail "gcc tests/deploy/thirdparty.c" "a plugin" "$(short "$(cat "$dir/cc.log")")"
        return
    fi
    arch=$(dpkg --print-architecture)
    printf '%s\n' "Package: aiod-plugin-thirdparty" "Version: 1.0" "Architecture: $arch" \
        "Maintainer: aiod tests <tests@example.invalid>" "Depends: aiod" \
        "Description: a plugin packaged apart from aiod (the deployment suite)" \
        >"$dir/pkg/DEBIAN/control"
    if ! dpkg-deb --root-owner-group --build "$dir/pkg" "$LAB_ROOT/var/tmp/aiod-debs/aiod-plugin-thirdparty_1.0_$arch.deb" >"$dir/deb.log" 2>&1; then
        fail "dpkg-deb --build of the plugin's package" "a .deb" "$(short "$(cat "$dir/deb.log")")"
        return
    fi
    chmod 0644 "$LAB_ROOT"/var/tmp/aiod-debs/aiod-plugin-thirdparty_*.deb

    ga alice submit demo.sleep 600 survivor
    expect_ok "alice submits a task that runs through the reloads"
    id=$OUT
    oldpid=$(main_pid)
    ga alice run thirdparty.hello
    expect_re "before the package: thirdparty.hello is unknown" 2 "unknown function 'thirdparty.hello'"

    gsh root "cd /var/tmp/aiod-debs && DEBIAN_FRONTEND=noninteractive apt-get install -y ./aiod-plugin-thirdparty_1.0_$arch.deb"
    expect_ok "apt-get install ./aiod-plugin-thirdparty_1.0_$arch.deb"
    if printf '%s' "$OUT" | grep -q 'Processing triggers for aiod'; then
        pass "apt ran aiod's trigger"
    else
        fail "apt-get install of a plugin package" "Processing triggers for aiod" "$(short "$OUT" 600)"
    fi
    ga alice run thirdparty.hello
    expect_re "after the install, with no restart: thirdparty.hello runs" 0 'hello from a packaged plugin'
    # Under the unit's hardening (seccomp, MemoryDenyWriteExecute) aiod still
    # runs private copies of its plugins, safe from a cp over their files.
    local maps
    maps=$(q "grep -c 'memfd:aiod-plugin:' /proc/$(main_pid)/maps")
    if [[ $maps =~ ^[0-9]+$ ]] && [ "$maps" -gt 0 ]; then
        pass "aiod maps its plugins from private copies ($maps memfd mappings)"
    else
        fail "memfd:aiod-plugin: mappings in /proc/MAINPID/maps" "at least one" "'$maps'"
    fi

    gsh root 'DEBIAN_FRONTEND=noninteractive apt-get remove -y aiod-plugin-thirdparty'
    expect_ok "apt-get remove aiod-plugin-thirdparty"
    ga alice run thirdparty.hello
    expect_re "after the removal: thirdparty.hello is unknown again" 2 "unknown function 'thirdparty.hello'"

    if [ "$(main_pid)" = "$oldpid" ]; then
        pass "the same daemon throughout (MainPID $oldpid): reloaded, not restarted"
    else
        fail "aiod's MainPID across the plugin package's install and removal" "$oldpid" "'$(main_pid)'"
    fi
    ga alice --json show "$id"
    if [ "$RC" = 0 ] && printf '%s' "$OUT" | grep -q '"state":"running"'; then
        pass "alice's task $id still runs"
    else
        fail "alice's task $id after the reloads" "state running" "$(seen)"
    fi
}

# A reboot with no client afterwards: the tasks the store keeps must go on
# by themselves. aiod.socket alone was enabled, so after a reboot nothing
# started the daemon until some client happened to connect, and a task
# waiting for --delay ran only then.
s17_reboot_runs_kept_tasks() {
    local id st
    st=$(q 'systemctl is-enabled aiod.service')
    if [ "$st" = enabled ]; then pass "aiod.service is enabled by apt-get install"; else
        fail "aiod.service enabled after apt-get install" "enabled" "'$st'"
    fi
    ga alice submit --delay "$DUR_DELAY" demo.echo after-the-reboot
    if [ "$RC" = 0 ] && is_id "$OUT"; then id=$OUT; else
        fail "alice: aioctl submit --delay $DUR_DELAY demo.echo after-the-reboot" "exit 0 and an id" "$(seen)"
        return
    fi
    if ! lab_reboot; then
        fail "rebooting the guest" "powered off and booted again" "see the [lab] lines above"
        return
    fi
    pass "the guest rebooted"
    # No client call from here until the task's end is in the journal.
    if poll 300 0.1 unit_is aiod.service active; then
        pass "aiod.service started at boot, with no client call"
    else
        fail "aiod.service after the reboot, before any client call" "active" \
            "'$(q 'systemctl is-active aiod.service')'"
        return
    fi
    if poll $(((DUR_DELAY + 30) * 10)) 0.1 eval \
        'q "journalctl -b -o cat -u aiod.service TASK_ID=$id" | grep -q "submitted task done: \"after-the-reboot\""'; then
        pass "task $id (--delay $DUR_DELAY) ran after the reboot with no client call"
    else
        fail "task $id after the reboot" "its end in aiod's journal ('submitted task done')" \
            "$(q "journalctl -b -o cat -u aiod.service | tail -n 5")"
    fi
    ga alice --json show "$id"
    if [ "$RC" = 0 ] && [ "$(jf state)" = done ]; then pass "alice: task $id is done"; else
        fail "alice: aioctl --json show $id after the reboot" "state done" "$(seen)"
    fi
}

SCENARIOS=(s1_identity s2_no_code_as_daemon s3_ids_never_reused s4_first_activation
    s5_bad_settings_keep_the_socket s6_net_dropin s7_default_socket s8_journal
    s9_man_and_security s10_purge s11_restart_keeps_tasks s12_kill_keeps_tasks s13_state_files
    s14_damaged_store s15_cluster s16_plugin_package s17_reboot_runs_kept_tasks)

# ------------------------------------------------------------ main

main() {
    trap finish EXIT
    trap 'say "interrupted"; NFAIL=$((NFAIL + 1)); exit 130' INT TERM HUP
    if [ $# -ne 1 ] || [ ! -d "$1" ]; then
        fail "usage" "tests/deploy/run.sh DEB_DIR (a directory with the .debs)" "arguments: $*"
        exit 2
    fi
    if [ "$(id -u)" != 0 ]; then
        fail "running as root" "uid 0 (the suite boots a container)" "uid $(id -u)"
        exit 1
    fi
    local t
    for t in debootstrap systemd-nspawn nsenter setsid flock python3 timeout; do
        command -v "$t" >/dev/null || {
            fail "host tool $t" "installed (debootstrap, systemd-container, util-linux, python3)" "missing"
            exit 1
        }
    done
    local dir=$1 pat f
    for pat in 'aiod_*.deb' 'libaioclient1_*.deb'; do
        # shellcheck disable=SC2206
        f=($dir/$pat)
        if [ ${#f[@]} -ne 1 ] || [ ! -f "${f[0]}" ]; then
            fail "$pat in $dir" "exactly one file" "${f[*]}"
            exit 1
        fi
        DEBS+=("$(cd "$(dirname "${f[0]}")" && pwd)/$(basename "${f[0]}")")
    done
    WORK=$(mktemp -d /tmp/aiod-deploy.XXXXXX)

    local t0=$SECONDS
    lab_tree >/dev/null || {
        fail "the guest tree" "built or cached under $LAB_BASE" "failed"
        exit 1
    }
    lab_log "guest tree ready in $((SECONDS - t0)) s"

    local s ts only=${AIOD_DEPLOY_ONLY:-}
    [ -n "$only" ] && say "NOTE: AIOD_DEPLOY_ONLY='$only': running only those scenarios"
    for s in "${SCENARIOS[@]}"; do
        if [ -n "$only" ] && ! [[ " $only " == *" ${s%%_*} "* ]]; then
            continue
        fi
        SCEN=${s%%_*}
        SCEN=${SCEN^^}
        ts=$SECONDS
        say "== $SCEN ${s#*_}"
        if fresh_guest; then
            "$s"
        fi
        lab_cleanup
        lab_log "$SCEN took $((SECONDS - ts)) s"
    done
    SCEN=end
    lab_log "whole run: $((SECONDS - t0)) s"
}

# On one line, so that bash has read it whole before running it: nothing
# after it is read from a file that may have changed meanwhile.
main "$@"; exit
