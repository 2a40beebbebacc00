//! Property tests of the ASID allocator against a model of every hart's TLB.
//!
//! The model TLB of a hart maps an ASID to the set of (space, version) pairs it holds
//! entries for. Running a space inserts its current version under the ASID the hart runs
//! it with; a shootdown (a page-table change followed by a flush by the space's ASID on
//! the harts that ran it) bumps the space's version and drops its entries there. The
//! safety property: whenever a hart runs space S with ASID a, its TLB holds under a only
//! entries of S at S's current version. Also checked: a full flush is asked for exactly
//! once per hart per rollover, and spaces running at the same time never share an ASID.

#[path = "support/cases.rs"]
mod cases;
use std::collections::{BTreeMap, BTreeSet};
use std::vec::Vec;

use pagoda_mm::tlb::{AsidAllocator, AsidContext};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Switch { hart: usize, space: usize },
    Shootdown { space: usize },
}

fn ops(harts: usize, spaces: usize) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => (0..harts, 0..spaces).prop_map(|(hart, space)| Op::Switch { hart, space }),
        1 => (0..spaces).prop_map(|space| Op::Shootdown { space }),
    ];
    proptest::collection::vec(op, 1..200)
}

fn scenario() -> impl Strategy<Value = (u32, usize, usize, Vec<Op>)> {
    (
        prop_oneof![Just(0u32), 2u32..5, Just(16)],
        1usize..4,
        1usize..12,
    )
        .prop_flat_map(|(bits, harts, spaces)| {
            (Just(bits), Just(harts), Just(spaces), ops(harts, spaces))
        })
}

#[derive(Default, Clone)]
struct Hart {
    running: Option<(usize, u16)>,
    tlb: BTreeMap<u16, BTreeSet<(usize, u64)>>,
    flushed_generation: u64,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases::cases(256)))]

    #[test]
    fn asids_never_alias_and_rollover_flushes_once((bits, harts, spaces, ops) in scenario()) {
        let alloc = AsidAllocator::new(bits, harts);
        let ctxs: Vec<AsidContext> = (0..spaces).map(|_| AsidContext::new()).collect();
        let mut version = vec![0u64; spaces];
        let mut model = vec![Hart { flushed_generation: 1, ..Hart::default() }; harts];
        for op in ops {
            match op {
                Op::Switch { hart, space } => {
                    let switch = alloc.asid_for(&ctxs[space], hart);
                    let generation = alloc.generation();
                    let h = &mut model[hart];
                    if !alloc.uses_asids() {
                        prop_assert!(switch.flush_all && switch.asid == 0);
                    } else if switch.flush_all {
                        prop_assert!(h.flushed_generation < generation, "second flush in one generation");
                    } else {
                        prop_assert_eq!(h.flushed_generation, generation, "new generation used without a flush");
                    }
                    if switch.flush_all {
                        h.tlb.clear();
                        h.flushed_generation = generation;
                    }
                    prop_assert_ne!(switch.asid == 0, alloc.uses_asids(), "ASID 0 is the kernel's");
                    prop_assert_eq!(ctxs[space].asid(), switch.asid);
                    h.running = Some((space, switch.asid));
                }
                Op::Shootdown { space } => {
                    version[space] += 1;
                    let asid = ctxs[space].asid();
                    for hart in ctxs[space].harts().snapshot().iter() {
                        if let Some(set) = model[hart].tlb.get_mut(&asid) {
                            set.retain(|&(s, _)| s != space);
                        }
                    }
                }
            }
            // Every running space touches memory: check, then fill its TLB.
            let mut running: BTreeMap<u16, usize> = BTreeMap::new();
            for (hart, h) in model.iter_mut().enumerate() {
                let Some((space, asid)) = h.running else { continue };
                let entries = h.tlb.entry(asid).or_default();
                for &(s, v) in entries.iter() {
                    prop_assert!(s == space && v == version[space],
                        "hart {} runs space {} with ASID {} but holds entries of space {} v{}", hart, space, asid, s, v);
                }
                entries.insert((space, version[space]));
                if alloc.uses_asids() {
                    let other = *running.entry(asid).or_insert(space);
                    prop_assert_eq!(other, space, "two running spaces share ASID {}", asid);
                }
            }
        }
    }
}

#[test]
fn rollover_with_every_hart_busy() {
    // 3 user ASIDs, 2 harts: each rollover keeps the two running spaces' ASIDs.
    let alloc = AsidAllocator::new(2, 2);
    let ctxs: Vec<AsidContext> = (0..6).map(|_| AsidContext::new()).collect();
    let a = alloc.asid_for(&ctxs[0], 0);
    let b = alloc.asid_for(&ctxs[1], 1);
    alloc.asid_for(&ctxs[2], 0);
    assert_eq!(alloc.generation(), 1);
    let fourth = alloc.asid_for(&ctxs[3], 0);
    assert_eq!(alloc.generation(), 2);
    assert!(fourth.flush_all);
    // Hart 1 still runs space 1, whose ASID survived the rollover.
    assert_ne!(fourth.asid, b.asid);
    let again = alloc.asid_for(&ctxs[1], 1);
    assert_eq!(again.asid, b.asid);
    assert!(again.flush_all, "hart 1 flushes once for generation 2");
    assert!(!alloc.asid_for(&ctxs[1], 1).flush_all);
    assert_ne!(a.asid, 0);
}
