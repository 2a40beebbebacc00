//! The frame allocator against its model (`mm/tests/frame_check`, shared with the
//! property test `frame_model`): the input picks a RAM layout (1 to 4 runs of frames with
//! gaps) and a sequence of allocations, frees, reference gets and puts, frees of
//! arbitrary frames and cache drains on any of four harts; the model checks alignment,
//! overlap, refusals only when no free aligned window exists, error results, `verify`
//! and the counts after every operation, and full coalescing at the end.
#![no_main]

use core::mem::MaybeUninit;

use libfuzzer_sys::fuzz_target;
use pagoda_mm::frame::{FrameAllocator, FrameMeta};

#[path = "../../../mm/tests/frame_check/mod.rs"]
#[allow(dead_code, reason = "`check` is the property test's entry; this target uses `check_in`")]
mod frame_check;
use frame_check::{HARTS, MAX_TEST_ORDER, Op};

/// Bytes read from the input, zeros past its end.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> usize {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b as usize
    }

    fn word(&mut self) -> usize {
        self.byte() | self.byte() << 8
    }

    fn hart(&mut self) -> Option<usize> {
        let b = self.byte();
        (b < 2 * HARTS).then_some(b % HARTS)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let mut start = 0x80000 + b.word() % 1024;
    let ranges: Vec<_> = (0..1 + b.byte() % 4)
        .map(|_| {
            let len = 1 + b.word() % 700;
            let run = start..start + len;
            start += len + b.byte() % 80;
            run
        })
        .collect();
    let mut ops = Vec::new();
    while !b.0.is_empty() && ops.len() < 400 {
        ops.push(match b.byte() % 16 {
            0..=5 => Op::Alloc { order: b.byte() % (MAX_TEST_ORDER + 1), hart: b.hart() },
            6..=10 => Op::Free { pick: b.word(), hart: b.hart() },
            11 | 12 => Op::Get { pick: b.word() },
            13 => Op::Put { pick: b.word(), hart: b.hart() },
            14 => Op::FreeAny { offset: b.word(), order: b.byte() % 4 },
            _ => Op::Drain,
        });
    }
    let phys = frame_check::phys_ranges(&ranges);
    let fa: *mut FrameAllocator = Box::into_raw(Box::new(FrameAllocator::new()));
    let meta: *mut [MaybeUninit<FrameMeta>] =
        Box::into_raw(Box::new_uninit_slice(FrameAllocator::metadata_len(&phys)));
    // SAFETY: both were just leaked and are handed out once; the check keeps no
    // reference to either once it returns (the model holds frame numbers only).
    frame_check::check_in(unsafe { &*fa }, unsafe { &mut *meta }, ranges, ops);
    // SAFETY: no reference to the allocator or its metadata is left (see above): taken
    // back from the leak, the allocator first (it points into the metadata).
    unsafe {
        drop(Box::from_raw(fa));
        drop(Box::from_raw(meta));
    }
});
