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
//! (5 % of that is the binary's own code, paged in by the load). The cache can only be
//! turned off by the `GLIBC_TUNABLES` environment variable, read when the process
//! starts, so `wsreg yjs` re-executes itself once with it set
//! ([`restart_without_thread_cache`]): same pid, same arguments, nothing started yet.
//! A `GLIBC_TUNABLES` that already sets `glibc.malloc.tcache_count` is left alone (that
//! is how to keep the cache). The CPU cost is in docs/benchmarks.md, section `yjs`.

/// The glibc tunable that turns the per-thread cache off.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TCACHE_COUNT: &str = "glibc.malloc.tcache_count";

/// Replaces this process by the same program with the same arguments and glibc's
/// per-thread cache turned off, unless `GLIBC_TUNABLES` already decides it. Call it
/// first thing, before any thread or file is opened. Returns only when there is nothing
/// to do or the `exec` failed (logged: the server then runs with the cache).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn restart_without_thread_cache() {
    use std::os::unix::process::CommandExt;

    let tunables = std::env::var_os("GLIBC_TUNABLES").unwrap_or_default();
    if tunables.to_string_lossy().contains(TCACHE_COUNT) {
        return;
    }
    let mut with_ours = tunables;
    if !with_ours.is_empty() {
        with_ours.push(":");
    }
    with_ours.push(format!("{TCACHE_COUNT}=0"));
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
        "cannot restart with glibc's thread cache off ({error}): memory freed when clients \
         leave may not go back to the system"
    );
}

/// Nothing to turn off outside glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn restart_without_thread_cache() {}
