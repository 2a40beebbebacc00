//! Targeted shootdown on the real Sv39 table with one simulated TLB per hart: a change
//! is flushed remotely only on the harts running the space; a hart that switched away
//! keeps its (now dead) entries and flushes the space before it runs it again. The
//! negative test removes that switch-in flush and shows a returning hart reading a
//! freed frame through its stale entry.

use std::sync::Arc;

use pagoda_mm::addr::PAGE_SIZE;
use pagoda_mm::vm::abi::*;
use pagoda_mm::vm::{AddressSpace, FaultError, VmConfig};

use super::sim::{SimFrames, SimMmu, Space, read, write};

const P: usize = PAGE_SIZE;
const RW: usize = PROT_READ | PROT_WRITE;
const ANON: usize = MAP_PRIVATE | MAP_ANONYMOUS;

/// A space whose first page hart 1 caches (value 7); the test continues on hart 0, and
/// hart 1 still runs the space unless `hart1_leaves`.
fn cached_on_hart1(frames: &Arc<SimFrames>, hart1_leaves: bool) -> (Space, usize) {
    let mut s = AddressSpace::new(SimMmu::on_harts(2), frames.clone(), VmConfig::LINUX_DEFAULT);
    let a = s.mmap(0, 4 * P, RW, ANON, None, 0).unwrap().0;
    write(&mut s, frames, a, 7).unwrap();
    s.mmu().run_on(1);
    assert_eq!(read(&mut s, frames, a), Ok(7));
    assert!(s.mmu().harts().cached(1, a).is_some());
    if hart1_leaves {
        s.mmu().leave(1);
    }
    s.mmu().run_on(0);
    (s, a)
}

fn remote_requests(s: &Space) -> u64 {
    use pagoda_mm::tlb::TlbOps;
    s.mmu().harts().stats().snapshot().remote_requests
}

#[test]
fn a_hart_running_the_space_is_shot_down() {
    let frames = SimFrames::new();
    let (mut s, a) = cached_on_hart1(&frames, false);
    let before = remote_requests(&s);
    s.munmap(a, P).unwrap();
    assert_eq!(remote_requests(&s), before + 1);
    assert!(s.mmu().harts().cached(1, a).is_none());
}

#[test]
fn a_hart_that_left_gets_no_shootdown_and_flushes_on_return() {
    let frames = SimFrames::new();
    let (mut s, a) = cached_on_hart1(&frames, true);
    let before = remote_requests(&s);
    s.munmap(a, P).unwrap();
    assert_eq!(
        remote_requests(&s),
        before,
        "no request to a hart not running it"
    );
    assert_eq!(frames.live(), 0, "the frame was freed");
    // Hart 1 still holds the entry, dead: it does not run the space.
    assert!(s.mmu().harts().cached(1, a).is_some());
    s.mmu().run_on(1);
    assert!(
        s.mmu().harts().cached(1, a).is_none(),
        "flushed on the way back"
    );
    assert_eq!(read(&mut s, &frames, a), Err(FaultError::Unmapped));
}

#[test]
fn mprotect_while_a_hart_is_away_takes_effect_when_it_returns() {
    let frames = SimFrames::new();
    let (mut s, a) = cached_on_hart1(&frames, true);
    s.mprotect(a, 4 * P, PROT_READ).unwrap();
    assert_eq!(remote_requests(&s), 0);
    s.mmu().run_on(1);
    assert_eq!(write(&mut s, &frames, a, 9), Err(FaultError::AccessDenied));
}

#[test]
#[should_panic(expected = "read of a free frame")]
fn without_the_switch_in_flush_a_returning_hart_reads_a_freed_frame() {
    let frames = SimFrames::new();
    let (mut s, a) = cached_on_hart1(&frames, true);
    s.mmu().harts().skip_switch_flush(true);
    s.munmap(a, P).unwrap();
    s.mmu().run_on(1);
    let _ = read(&mut s, &frames, a);
}
