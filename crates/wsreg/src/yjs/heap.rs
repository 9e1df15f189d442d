//! Giving the memory of an unloaded room back to the system.
//!
//! glibc's allocator keeps freed memory in its arenas (one per thread that allocated,
//! up to eight per core) and returns only the top of each heap by itself, so a server
//! whose rooms were loaded and then all left stayed at its peak RSS: 28.9 MiB loaded,
//! 28.8 MiB three seconds after the last client left (issue 15). `malloc_trim(0)` walks
//! every arena and returns its free pages. It runs after a room is unloaded, on the
//! blocking thread that unloaded it, never on the async workers.

/// Returns the allocator's free pages to the system (glibc only; elsewhere, nothing).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() {
    // SAFETY: malloc_trim takes no pointer and has no precondition; glibc serialises it
    // with every other allocator call (it locks each arena in turn).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Returns the allocator's free pages to the system (glibc only; elsewhere, nothing).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}
