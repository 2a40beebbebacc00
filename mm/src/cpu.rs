//! Which hart is running: the [`CpuLocal`] hook through which the heap and the frame
//! allocator reach their per-hart caches without atomics.

/// The running hart's id, with the promise that the caller stays alone on that hart's
/// per-hart state while it holds the returned pin.
///
/// The heap's per-hart object caches and the frame allocator's per-hart frame caches are
/// touched without atomic read-modify-write instructions; this trait is what makes that
/// sound.
///
/// # Safety
///
/// While a `Self::Pin` returned by [`pin`](CpuLocal::pin) is alive, no other execution
/// context may hold a pin carrying the same hart id: not another thread (no migration to
/// another hart with the id in hand), and not an interrupt handler on the same hart that
/// could itself call `pin`. A kernel implements it by disabling interrupts (which also
/// disables preemption) in `pin` and restoring them when the pin drops; a host test gives
/// each thread its own id. Ids may be arbitrary: an id at or above a user's hart count
/// (the heap's, the frame allocator's) simply takes the shared, locked path.
pub unsafe trait CpuLocal {
    /// Held for the duration of one heap operation; dropping it ends the pinned section.
    type Pin;

    /// Pins the caller and returns its hart id together with the pin.
    fn pin() -> (usize, Self::Pin);
}

/// A [`CpuLocal`] for contexts with no per-hart state (single-hart boot code, tools):
/// every operation takes the shared, locked path.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unpinned;

// SAFETY: the returned id is `usize::MAX`, which is never below a hart count, so no
// per-hart state is ever touched under it.
unsafe impl CpuLocal for Unpinned {
    type Pin = ();

    #[inline]
    fn pin() -> (usize, ()) {
        (usize::MAX, ())
    }
}
