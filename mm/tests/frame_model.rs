//! Property tests: the frame allocator against a simple model of which frames are managed
//! and which blocks are live, over random non-contiguous RAM layouts.
//!
//! Checked after every operation: blocks are naturally aligned, inside managed memory and
//! disjoint from every live block (no overlap); an allocation fails only when no free,
//! managed, aligned window of that size exists (no loss: full coalescing); error results
//! exactly where the model says the request is invalid; `verify` holds; the used count
//! matches. At the end everything is freed and the free lists must equal the initial
//! block structure.

#[path = "support/cases.rs"]
mod cases;
use core::ops::Range;

use proptest::prelude::*;

mod frame_check;
use frame_check::{HARTS, MAX_TEST_ORDER, Op, check};

fn op() -> impl Strategy<Value = Op> {
    let hart = proptest::option::of(0..HARTS);
    prop_oneof![
        6 => (0..=MAX_TEST_ORDER, hart.clone()).prop_map(|(o, hart)| Op::Alloc {
            // Mostly small orders, like a kernel.
            order: if o > 4 { o - 4 } else { o },
            hart,
        }),
        2 => (0..=MAX_TEST_ORDER, hart.clone()).prop_map(|(order, hart)| Op::Alloc { order, hart }),
        5 => (any::<usize>(), hart.clone()).prop_map(|(pick, hart)| Op::Free { pick, hart }),
        2 => any::<usize>().prop_map(|pick| Op::Get { pick }),
        2 => (any::<usize>(), hart).prop_map(|(pick, hart)| Op::Put { pick, hart }),
        1 => (any::<usize>(), 0..4usize).prop_map(|(offset, order)| Op::FreeAny { offset, order }),
        1 => Just(Op::Drain),
    ]
}

/// A RAM layout: 1 to 4 runs of 1..700 frames separated by gaps of 0..80 frames (a gap of
/// 0 makes two touching ranges), from an arbitrary start frame, given in shuffled order.
fn layout() -> impl Strategy<Value = Vec<Range<usize>>> {
    (
        0x80000usize..0x80000 + 1024,
        proptest::collection::vec((1usize..700, 0usize..80), 1..5),
        any::<u64>(),
    )
        .prop_map(|(start, runs, shuffle)| {
            let mut out = Vec::new();
            let mut p = start;
            for (len, gap) in runs {
                out.push(p..p + len);
                p += len + gap;
            }
            let n = out.len() as u64;
            out.rotate_left((shuffle % n) as usize);
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases::cases(128), ..ProptestConfig::default() })]

    #[test]
    fn allocator_matches_model(ranges in layout(), ops in proptest::collection::vec(op(), 1..160)) {
        check(ranges, ops);
    }
}

#[test]
fn model_handles_a_fully_fragmented_layout() {
    // Single-frame runs separated by single-frame gaps: nothing above order 0 exists.
    let ranges: Vec<Range<usize>> = (0..64)
        .map(|i| 0x80000 + 2 * i..0x80000 + 2 * i + 1)
        .collect();
    let mut ops: Vec<Op> = (0..70)
        .map(|i| Op::Alloc {
            order: i % 2,
            hart: Some(i % HARTS),
        })
        .collect();
    ops.extend((0..64).map(|pick| Op::Free {
        pick,
        hart: Some(pick % HARTS),
    }));
    check(ranges, ops);
}
