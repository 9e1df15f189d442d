//! Giving the memory of an unloaded room back to the system.
//!
//! glibc's allocator keeps freed memory in its arenas (one per thread that allocated,
//! up to eight per core) and returns only the top of each heap by itself, so a server
//! whose rooms were loaded and then all left stayed at its peak RSS: 28.9 MiB loaded,
//! 28.8 MiB three seconds after the last client left (issue 15). `malloc_trim(0)` walks
//! every arena and returns its free pages ([`crate::sys::release_free_memory`], where the
//! crate's `unsafe` calls live). It runs once a room is unloaded and the
//! connection that left last has dropped its socket (whose buffers are most of a room's
//! memory), on that connection's thread.
//!
//! `malloc_trim` cannot return a page that still holds a live chunk, and glibc's
//! per-thread cache (tcache: up to seven freed chunks of each size up to 1 KiB, per
//! thread) counts as live: after a load those chunks lie scattered over the arenas and
//! each pins its page. Measured with 200 rooms of two clients, three load/unload
//! cycles: RSS stayed 19–26 % above the empty server's with the cache, 6–11 % without it
//! (5 % of that is the binary's own code, paged in by the load). Each worker thread's
//! arena also kept a few pages with a live chunk after every load: with one arena for
//! all threads (`glibc.malloc.arena_max=1`) the anonymous memory left after an unload
//! went from 144–160 KiB to 52–144 KiB over the empty server's (4 cycles of 200 rooms),
//! and the benchmark's CPU figures did not move. Both can only be set by the
//! `GLIBC_TUNABLES` environment variable, read when the process starts, so `wsreg yjs`
//! re-executes itself once with them set ([`restart_with_tunables`]): same pid,
//! same arguments, nothing started yet. A tunable that `GLIBC_TUNABLES` already sets is
//! left alone (`glibc.malloc.tcache_count=7` keeps the cache). glibc rewrites the
//! variable as it reads it, so `/proc/<pid>/environ` may not show `arena_max`; the
//! heap's mappings in `/proc/<pid>/smaps` do (no arena but `[heap]` grows). The CPU
//! cost is in docs/benchmarks.md, section `yjs`.

/// The glibc tunables set, each unless `GLIBC_TUNABLES` already sets it: no per-thread
/// cache, and one arena for every thread.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TUNABLES: [(&str, &str); 2] = [
    ("glibc.malloc.tcache_count", "0"),
    ("glibc.malloc.arena_max", "1"),
];

/// Replaces this process by the same program with the same arguments, glibc's
/// per-thread cache turned off and one arena, unless `GLIBC_TUNABLES` already decides
/// both. Call it first thing, before any thread or file is opened. Returns only when
/// there is nothing to do or the `exec` failed (logged: the server then runs with
/// glibc's defaults).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn restart_with_tunables() {
    use std::os::unix::process::CommandExt;

    let tunables = std::env::var_os("GLIBC_TUNABLES").unwrap_or_default();
    let set = tunables.to_string_lossy().into_owned();
    let missing: Vec<String> = TUNABLES
        .iter()
        .filter(|(name, _)| !set.contains(name))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    if missing.is_empty() {
        return;
    }
    let mut with_ours = tunables;
    for tunable in missing {
        if !with_ours.is_empty() {
            with_ours.push(":");
        }
        with_ours.push(tunable);
    }
    let mut args = std::env::args_os();
    let (Some(arg0), Ok(exe)) = (args.next(), std::env::current_exe()) else {
        return;
    };
    let error = std::process::Command::new(exe)
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", with_ours)
        .exec();
    tracing::warn!(
        "cannot restart with glibc's thread cache off and one arena ({error}): memory \
         freed when clients leave may not go back to the system"
    );
}

/// Nothing to turn off outside glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn restart_with_tunables() {}
