#!/bin/bash
# The deployment lab: a Debian 12 minbase tree booted with its own systemd as
# PID 1 in a systemd-nspawn container.
#
# Sourced by tests/deploy/run.sh, which uses these functions:
#   lab_tree           ensure the cached tree exists, print its path
#   lab_boot           fresh writable copy of the tree, boot it, wait until
#                      `systemctl is-system-running` says running/degraded
#   lab_as USER CMD…   run CMD in the guest as USER (clean environment)
#   lab_as_session USER CMD…
#                      the same with XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS
#                      of USER's user manager (/run/user/UID)
#   lab_sh USER SCRIPT sh -c SCRIPT in the guest as USER
#   lab_cleanup        power off, kill leftovers, remove the copy (run.sh
#                      calls it from its EXIT trap)
#   LAB_ROOT           the running guest's tree on the host (write files there)
#
# Run directly:
#   tests/deploy/lab.sh build    build (or find) the cached tree, print its path
#   tests/deploy/lab.sh shell    boot a copy and open a root shell in it
#
# Host requirements: root, debootstrap, systemd-container (systemd-nspawn),
# util-linux (nsenter, setsid, flock). The host's PID 1 need not be systemd;
# cgroups may be hybrid (v1 name=systemd plus cgroup2 at /sys/fs/cgroup/unified).

LAB_BASE=${LAB_BASE:-/var/tmp/aiod-lab}
LAB_MIRROR=${LAB_MIRROR:-http://deb.debian.org/debian}
LAB_SUITE=bookworm
# What the guest has before aiod's packages are installed: systemd as PID 1,
# user managers (libpam-systemd), man pages, a test HTTP server, the Redis of
# the cluster scenario (redis-server, which brings redis-cli) and aiod's
# runtime libraries (libhiredis0.14: the cluster's Redis client), so that
# `apt-get install ./aiod_*.deb` downloads nothing.
LAB_PACKAGES=(systemd systemd-sysv dbus libpam-systemd procps man-db python3 curl
    ca-certificates redis-server libuv1 libprotobuf-c1 libjansson4 libsystemd0 libhiredis0.14)
# Seconds a single guest command may take before it is killed.
LAB_CMD_TIMEOUT=${LAB_CMD_TIMEOUT:-120}
LAB_GUEST_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

LAB_ROOT=
LAB_RUN=
LAB_NAME=
LAB_NSPAWN_PID=
LAB_PID1=

lab_log() { printf '[lab %s] %s\n' "$(date +%T)" "$*" >&2; }
lab_die() {
    lab_log "FATAL: $*"
    exit 1
}

# ---------------------------------------------------------------- the tree

# Everything that shapes the cached tree is in this function (and in
# LAB_PACKAGES, LAB_SUITE, LAB_MIRROR): the cache key is a hash of its text.
lab_build_tree_into() {
    local dir=$1 incl
    incl=$(
        IFS=,
        echo "${LAB_PACKAGES[*]}"
    )
    debootstrap --variant=minbase --include="$incl" "$LAB_SUITE" "$dir" "$LAB_MIRROR" ||
        return 1
    # Quiet, reliable boots: no gettys, no periodic maintenance.
    systemctl --root="$dir" --quiet mask \
        getty@.service getty@tty1.service serial-getty@.service console-getty.service \
        container-getty@.service getty.target \
        apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
        e2scrub_all.timer e2scrub_reap.service fstrim.timer || return 1
    # Journal in memory, nothing rate-limited: the tests read every line.
    mkdir -p "$dir/etc/systemd/journald.conf.d" || return 1
    printf '[Journal]\nStorage=volatile\nRateLimitIntervalSec=0\nRateLimitBurst=0\n' \
        >"$dir/etc/systemd/journald.conf.d/aiod-lab.conf" || return 1
    # Every boot gets a fresh machine id.
    : >"$dir/etc/machine-id" || return 1
    echo aiod-lab >"$dir/etc/hostname" || return 1
    chroot "$dir" apt-get clean || return 1
}

lab_tree_key() {
    {
        printf '%s\n' "$LAB_SUITE" "$LAB_MIRROR" "${LAB_PACKAGES[@]}"
        declare -f lab_build_tree_into
    } | sha256sum | cut -c1-16
}

# Prints the path of the cached tree, building it first when it is missing.
lab_tree() {
    local key tree tmp t0
    key=$(lab_tree_key)
    tree=$LAB_BASE/tree-$key
    if [ -d "$tree" ]; then
        echo "$tree"
        return 0
    fi
    mkdir -p "$LAB_BASE" || return 1
    # One builder at a time; whoever waited finds the tree in place.
    exec 9>"$LAB_BASE/.build.lock"
    flock 9 || return 1
    if [ ! -d "$tree" ]; then
        t0=$SECONDS
        tmp=$(mktemp -d "$LAB_BASE/.building-$key.XXXXXX") || return 1
        lab_log "building the guest tree $tree (debootstrap $LAB_SUITE from $LAB_MIRROR)"
        if ! lab_build_tree_into "$tmp/root" >"$tmp.log" 2>&1; then
            tail -n 30 "$tmp.log" >&2
            rm -rf --one-file-system "$tmp" "$tmp.log"
            exec 9>&-
            lab_log "building the guest tree failed"
            return 1
        fi
        # Atomic: the tree appears whole or not at all.
        mv -T "$tmp/root" "$tree" || return 1
        rmdir "$tmp"
        rm -f "$tmp.log"
        lab_log "guest tree built in $((SECONDS - t0)) s"
    fi
    exec 9>&-
    echo "$tree"
}

# ---------------------------------------------------------------- booting

# Runs CMD in all of the guest's namespaces with a clean environment, as root.
lab_enter() {
    timeout -k 5 $((LAB_CMD_TIMEOUT + 15)) \
        nsenter -t "$LAB_PID1" -a \
        env -i PATH="$LAB_GUEST_PATH" LANG=C.UTF-8 TERM=dumb HOME=/root \
        timeout -k 5 "$LAB_CMD_TIMEOUT" "$@" </dev/null
}

lab_cgroup_dirs() {
    local d
    for d in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
        case $d in
        /sys/fs/cgroup)
            # Pure cgroup2 host: one hierarchy at the top.
            [ -f /sys/fs/cgroup/cgroup.controllers ] && echo "$d/$LAB_NAME"
            ;;
        *) [ -f "$d/cgroup.procs" ] && echo "$d/$LAB_NAME" ;;
        esac
    done
}

lab_boot() {
    local tree i state
    # LAB_TREE: use another prepared tree instead of the cache (development).
    tree=${LAB_TREE:-}
    [ -n "$tree" ] || tree=$(lab_tree) || { lab_log "no guest tree"; return 1; }
    LAB_RUN=$(mktemp -d "$LAB_BASE/run.XXXXXX") || { lab_log "mktemp"; return 1; }
    LAB_NAME=aiod-lab-${LAB_RUN##*.}
    LAB_ROOT=$LAB_RUN/root
    local t0
    t0=$(date +%s%N)
    # A writable overlay on the cached tree (the cache is its read-only lower
    # layer, so nothing a guest does reaches it); a full copy where overlayfs
    # is not available, or with LAB_COPY=copy.
    mkdir -p "$LAB_ROOT" "$LAB_RUN/upper" "$LAB_RUN/work" || return 1
    if [ "${LAB_COPY:-overlay}" = overlay ] &&
        mount -t overlay aiod-lab -o "lowerdir=$tree,upperdir=$LAB_RUN/upper,workdir=$LAB_RUN/work" \
            "$LAB_ROOT" 2>/dev/null; then
        lab_log "fresh overlay on $tree in $((($(date +%s%N) - t0) / 1000000)) ms: $LAB_ROOT"
    else
        rmdir "$LAB_ROOT" &&
            cp -a --reflink=auto "$tree" "$LAB_ROOT" || { lab_log "cannot copy the tree"; return 1; }
        lab_log "fresh copy of $tree in $((($(date +%s%N) - t0) / 1000000)) ms: $LAB_ROOT"
    fi
    lab_start_guest
}

# Boots systemd under nspawn on $LAB_ROOT (lab_boot's root, or the same one
# again after lab_reboot's poweroff) and waits until it is up.
lab_start_guest() {
    local i state t0
    t0=$(date +%s%N)

    # The cgroup step: a cgroup of our own in each hierarchy, holding the
    # shell that then becomes nspawn.
    local cg
    for cg in $(lab_cgroup_dirs); do
        mkdir -p "$cg" || { lab_log "cannot create cgroup $cg"; return 1; }
    done
    (
        for cg in $(lab_cgroup_dirs); do
            echo "$BASHPID" >"$cg/cgroup.procs" || exit 97
        done
        exec setsid systemd-nspawn --quiet --boot --directory="$LAB_ROOT" \
            --machine="$LAB_NAME" --register=no --keep-unit --console=read-only \
            --private-network \
            </dev/null >"$LAB_RUN/console.log" 2>&1
    ) &
    LAB_NSPAWN_PID=$!
    lab_log "systemd-nspawn started, pid $LAB_NSPAWN_PID, machine $LAB_NAME"

    # The container's PID 1 is nspawn's child.
    LAB_PID1=
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$LAB_NSPAWN_PID" 2>/dev/null; then
            tail -n 40 "$LAB_RUN/console.log" >&2
            { lab_log "systemd-nspawn exited during start"; return 1; }
        fi
        if [ "$(cat "/proc/$LAB_NSPAWN_PID/comm" 2>/dev/null)" = systemd-nspawn ]; then
            LAB_PID1=$(pgrep -P "$LAB_NSPAWN_PID" | head -n 1)
            if [ -n "$LAB_PID1" ] && [ "$(cat "/proc/$LAB_PID1/comm" 2>/dev/null)" = systemd ]; then
                break
            fi
            LAB_PID1=
        fi
        sleep 0.1
    done
    [ -n "$LAB_PID1" ] || {
        tail -n 40 "$LAB_RUN/console.log" >&2
        { lab_log "no systemd PID 1 under nspawn after 30 s"; return 1; }
    }

    # Booted when is-system-running says so; there is no notification to
    # wait on from outside, so poll (bounded).
    for ((i = 0; i < 600; i++)); do
        kill -0 "$LAB_NSPAWN_PID" 2>/dev/null || {
            tail -n 40 "$LAB_RUN/console.log" >&2
            { lab_log "the container stopped during boot"; return 1; }
        }
        state=$(LAB_CMD_TIMEOUT=10 lab_enter systemctl is-system-running 2>/dev/null)
        case $state in
        running | degraded) break ;;
        esac
        sleep 0.1
    done
    case $state in
    running) ;;
    degraded)
        lab_log "guest is degraded; failed units:"
        lab_enter systemctl --failed --no-legend >&2
        ;;
    *)
        tail -n 40 "$LAB_RUN/console.log" >&2
        { lab_log "guest not booted after 60 s (is-system-running: '$state')"; return 1; }
        ;;
    esac
    lab_log "guest booted ($state) in $((($(date +%s%N) - t0) / 1000000)) ms, PID 1 is $LAB_PID1 on the host"
}

# A real reboot of the guest: systemd powers off (as for SIGRTMIN+4),
# nspawn exits, and the same root boots again; what the guest wrote to its
# disk stays, nothing of its memory or /run does.
lab_reboot() {
    [ -n "$LAB_NSPAWN_PID" ] && [ -n "$LAB_PID1" ] || { lab_log "no guest to reboot"; return 1; }
    if ! lab_poweroff 300; then
        lab_log "guest did not power off in 30 s"
        return 1
    fi
    wait "$LAB_NSPAWN_PID" 2>/dev/null
    lab_log "guest powered off for the reboot"
    LAB_NSPAWN_PID='' LAB_PID1=''
    lab_start_guest
}

# lab_as USER CMD…: CMD in the guest as USER, a clean environment, no session.
lab_as() {
    local user=$1
    shift
    lab_enter runuser -u "$user" -- "$@"
}

# lab_as_session USER CMD…: as lab_as, with USER's user-manager environment.
lab_as_session() {
    local user=$1 uid
    shift
    uid=$(lab_enter id -u "$user") || return 1
    lab_enter runuser -u "$user" -- env XDG_RUNTIME_DIR="/run/user/$uid" \
        DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$uid/bus" "$@"
}

# lab_sh USER SCRIPT: sh -c SCRIPT in the guest as USER.
lab_sh() {
    lab_as "$1" sh -c "$2"
}

# Power off, kill what is left, remove the copy. Safe to call more than once.
# Asks the guest's systemd for a poweroff (SIGRTMIN+4) and waits up to N
# tenths of a second for nspawn to exit; non-zero if it did not.
lab_poweroff() {
    local i
    [ -n "$LAB_PID1" ] && kill -s RTMIN+4 "$LAB_PID1" 2>/dev/null
    for ((i = 0; i < $1; i++)); do
        kill -0 "$LAB_NSPAWN_PID" 2>/dev/null || return 0
        sleep 0.1
    done
    ! kill -0 "$LAB_NSPAWN_PID" 2>/dev/null
}

lab_cleanup() {
    local i cg pids
    local t0
    t0=$(date +%s%N)
    if [ -n "$LAB_NSPAWN_PID" ] && kill -0 "$LAB_NSPAWN_PID" 2>/dev/null; then
        if ! lab_poweroff 200; then
            # SIGKILL to a PID namespace's init kills the whole namespace.
            lab_log "guest did not power off in 20 s; killing it"
            [ -n "$LAB_PID1" ] && kill -KILL "$LAB_PID1" 2>/dev/null
            kill -KILL "$LAB_NSPAWN_PID" 2>/dev/null
        fi
    fi
    if [ -n "$LAB_NSPAWN_PID" ]; then
        wait "$LAB_NSPAWN_PID" 2>/dev/null
        lab_log "guest powered off in $((($(date +%s%N) - t0) / 1000000)) ms"
    fi
    # Anything still in our cgroups is a leftover.
    if [ -n "$LAB_NAME" ]; then
        for ((i = 0; i < 50; i++)); do
            pids=$(for cg in $(lab_cgroup_dirs); do
                [ -d "$cg" ] && find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null
            done | sort -u)
            [ -z "$pids" ] && break
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null
            sleep 0.1
        done
        for cg in $(lab_cgroup_dirs); do
            [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
        done
    fi
    if [ -n "$LAB_RUN" ] && [ -d "$LAB_RUN" ]; then
        if [ -n "${LAB_KEEP:-}" ]; then
            lab_log "LAB_KEEP set: leaving $LAB_RUN"
        else
            # The overlay, and anything else still mounted below the run
            # directory (nspawn mounts in its own namespace), goes first.
            findmnt -rno TARGET | grep -F "$LAB_RUN/" | sort -r | while read -r m; do
                umount "$m" 2>/dev/null || umount -l "$m"
            done
            rm -rf --one-file-system "$LAB_RUN"
        fi
    fi
    LAB_NSPAWN_PID='' LAB_PID1='' LAB_RUN='' LAB_NAME=''
}

# lab.sh build | lab.sh shell
lab_main() {
    set -u
    [ "$(id -u)" = 0 ] || lab_die "must run as root"
    case ${1:-} in
    build) lab_tree ;;
    shell)
        trap lab_cleanup EXIT
        trap 'exit 130' INT TERM
        lab_boot || exit 1
        nsenter -t "$LAB_PID1" -a env -i PATH="$LAB_GUEST_PATH" TERM="${TERM:-dumb}" \
            HOME=/root bash -l
        ;;
    *)
        echo "usage: $0 build|shell" >&2
        exit 2
        ;;
    esac
}

# Run directly (not sourced): the whole compound is read before it runs, and
# it exits, so bash never reads on in a file that may have changed meanwhile.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    lab_main "$@"
    exit
fi
