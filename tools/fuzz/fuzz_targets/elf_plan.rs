//! `elf::plan` on arbitrary bytes: refused or a plan whose promises hold (every segment
//! inside the file and the user half, file bytes within memory bytes, sorted and
//! disjoint, the entry in an executable segment).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pagoda_formats::elf;
use pagoda_mm::layout::USER_END;

fuzz_target!(|data: &[u8]| {
    let Ok(plan) = elf::plan(data) else { return };
    assert!(plan.phnum > 0);
    for s in &plan.segments {
        assert!(s.filesz <= s.memsz);
        assert!(s.offset + s.filesz <= data.len());
        assert!(s.vaddr + s.memsz <= USER_END.as_usize());
        assert!(s.map_start() <= s.map_end());
    }
    for w in plan.segments.windows(2) {
        assert!(w[0].map_end() <= w[1].map_start());
    }
    assert!(plan
        .segments
        .iter()
        .any(|s| s.exec && s.vaddr <= plan.entry && plan.entry < s.vaddr + s.memsz));
});
