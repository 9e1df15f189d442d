//! The crate's only `unsafe` code: two calls whose safe wrappers no crate offers.
//!
//! Everything else reaches the system through `rustix`, `signal-hook` and std, and the
//! crate root denies `unsafe_code` everywhere but here, so an `unsafe` block cannot be
//! added elsewhere without the compiler saying so. Each function states why its call is
//! sound for every input its safe signature admits.
//!
//! - [`release_free_memory`]: glibc's `malloc_trim`, which libc only declares.
//! - [`SharedFd::readable`]: tokio's `AsyncFd` registration, `unsafe` since tokio asks
//!   its caller to keep the descriptor open and unchanged; an `Arc<OwnedFd>` guarantees
//!   both, so the wrapper takes nothing else.

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

#[cfg(feature = "etcd")]
pub use shared_fd::SharedFd;

#[cfg(feature = "etcd")]
mod shared_fd {
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd, RawFd};
    use std::sync::Arc;

    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// A descriptor shared with its other users, as tokio's reactor waits on it.
    pub struct SharedFd(Arc<OwnedFd>);

    impl AsRawFd for SharedFd {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_raw_fd()
        }
    }

    impl SharedFd {
        /// Registers `fd` with the current tokio runtime, to wait until it is readable.
        /// Must be called inside a runtime (tokio panics otherwise).
        pub fn readable(fd: Arc<OwnedFd>) -> io::Result<AsyncFd<SharedFd>> {
            // SAFETY: tokio asks that the descriptor stay open and refer to the same file
            // description for as long as the `AsyncFd` lives, and that `as_raw_fd` always
            // return it. The `AsyncFd` owns a clone of the `Arc`, which keeps the
            // `OwnedFd` alive (it closes only when the last clone drops), and an `OwnedFd`
            // behind an `Arc` cannot be replaced or closed early (no interior
            // mutability), so its number never changes.
            let registered =
                unsafe { AsyncFd::register_with_interest(SharedFd(fd), Interest::READABLE) };
            registered.map_err(io::Error::from)
        }
    }
}
