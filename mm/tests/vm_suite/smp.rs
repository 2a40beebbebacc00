//! Flush-then-free across harts, on the real Sv39 table with one simulated TLB per hart:
//! a frame that an `munmap` releases must be in no TLB of a hart running the space when
//! it is freed (a hart that switched away flushes before it returns: `shootdown.rs`), and a
//! right an `mprotect` removes must be gone from every hart's TLB when the call returns.
//! The negative test removes the remote half of every fence and shows the first check
//! catching it (QEMU would not: its harts share no stale TLB state that a test sees).

use std::sync::Arc;

use pagoda_mm::addr::PAGE_SIZE;
use pagoda_mm::vm::abi::*;
use pagoda_mm::vm::{AddressSpace, VmConfig};

use super::sim::{SimFrames, SimMmu, Space, check_invariants, read, write};

const P: usize = PAGE_SIZE;
const RW: usize = PROT_READ | PROT_WRITE;
const ANON: usize = MAP_PRIVATE | MAP_ANONYMOUS;

/// A space run by two harts, with a page written on hart 0 and read on hart 1 (so both
/// cache its translation); the test continues on hart 0. Every frame freed from now on
/// is checked against every hart's TLB.
fn page_cached_on_two_harts(frames: &Arc<SimFrames>) -> (Space, usize) {
    let mut s = AddressSpace::new(SimMmu::on_harts(2), frames.clone(), VmConfig::LINUX_DEFAULT);
    let a = s.mmap(0, 4 * P, RW, ANON, None, 0).unwrap().0;
    write(&mut s, frames, a, 7).unwrap();
    s.mmu().run_on(1);
    assert_eq!(read(&mut s, frames, a), Ok(7));
    s.mmu().run_on(0);
    assert!(s.mmu().harts().cached(1, a).is_some());
    let harts = s.mmu().harts().clone();
    frames.on_free(move |pa| {
        let holders: Vec<usize> = harts
            .entries()
            .iter()
            .filter(|e| e.2 == pa && harts.is_running(e.0))
            .map(|e| e.0)
            .collect();
        assert!(
            holders.is_empty(),
            "frame {pa:?} freed while harts {holders:?} still cache it"
        );
    });
    (s, a)
}

#[test]
fn munmap_frees_a_frame_only_after_every_hart_dropped_it() {
    let frames = SimFrames::new();
    let (mut s, a) = page_cached_on_two_harts(&frames);
    s.munmap(a, P).unwrap();
    assert_eq!(frames.live(), 0, "the frame was freed");
    assert!(s.mmu().harts().cached(1, a).is_none());
    check_invariants(&[&s], &frames);
}

#[test]
#[should_panic(expected = "still cache it")]
fn without_the_remote_fence_munmap_frees_a_frame_another_hart_caches() {
    let frames = SimFrames::new();
    let (mut s, a) = page_cached_on_two_harts(&frames);
    s.mmu().harts().skip_remote_fences(true);
    // Hart 1 could still write to the freed frame through its stale entry.
    let _ = s.munmap(a, P);
}

#[test]
fn mprotect_removes_write_from_every_hart() {
    let frames = SimFrames::new();
    let (mut s, a) = page_cached_on_two_harts(&frames);
    s.mmu().run_on(1);
    write(&mut s, &frames, a, 8).unwrap();
    s.mmu().run_on(0);
    s.mprotect(a, 4 * P, PROT_READ).unwrap();
    check_invariants(&[&s], &frames);
    s.mmu().run_on(1);
    assert_eq!(
        write(&mut s, &frames, a, 9),
        Err(pagoda_mm::vm::FaultError::AccessDenied)
    );
}

#[test]
fn teardown_of_a_space_two_harts_ran() {
    let frames = SimFrames::new();
    let (s, _) = page_cached_on_two_harts(&frames);
    // Hart 1 switches away first, as it would before the process exits on hart 0.
    s.mmu().leave(1);
    drop(s);
    assert_eq!(frames.live(), 0);
}
