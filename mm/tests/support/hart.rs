//! The `CpuLocal` of the host heap tests: each test thread says which hart it is, in a
//! thread-local. Included by `heap_host` and `heap_footprint` with
//! `#[path = "support/hart.rs"] mod hart_support;`.

use std::cell::Cell;

use pagoda_mm::cpu::CpuLocal;

thread_local! {
    static HART: Cell<usize> = const { Cell::new(0) };
}

/// The hart the calling test thread says it is (set with [`set_hart`]).
pub struct ThreadHart;

// SAFETY: a host thread has no interrupts; a thread switches ids only between heap calls,
// and every test gives the threads that share a heap at the same time distinct ids, so no
// two contexts hold the same id at once.
unsafe impl CpuLocal for ThreadHart {
    type Pin = ();
    fn pin() -> (usize, ()) {
        (HART.with(Cell::get), ())
    }
}

/// Makes the calling thread hart `id` from now on.
pub fn set_hart(id: usize) {
    HART.with(|h| h.set(id));
}
