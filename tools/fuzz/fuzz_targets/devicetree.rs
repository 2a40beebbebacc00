//! The kernel's reading of an arbitrary device tree: the check of its blocks
//! (`devicetree::open`), the devices, then the boot information and the free RAM ranges,
//! as `boot` does it. Nothing panics; no free range is empty or overlaps the kernel
//! image, anything unavailable, or another free range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pagoda_formats::devicetree::{self, BootInfo, Devices, Region};
use pagoda_mm::addr::PhysAddr;

fuzz_target!(|data: &[u8]| {
    let Ok(fdt) = devicetree::open(data) else { return };
    let Ok(devices) = Devices::scan(&fdt) else { return };
    let kernel = Region {
        start: PhysAddr(0x8020_0000),
        end: PhysAddr(0x8040_0000),
    };
    let Ok(info) = BootInfo::parse(&fdt, PhysAddr(0x8220_0000), kernel, devices) else {
        return;
    };
    let _ = info.args().count();
    let _ = info.ram_bytes();
    let free = info.free_ranges();
    for (i, r) in free.iter().enumerate() {
        assert!(r.start.0 < r.end.0, "an empty free range {r:?}");
        assert!(!r.overlaps(&kernel), "{r:?} overlaps the kernel");
        for u in info.unavailable() {
            assert!(!r.overlaps(&u), "{r:?} overlaps unavailable {u:?}");
        }
        for other in &free[i + 1..] {
            assert!(!r.overlaps(other), "{r:?} overlaps {other:?}");
        }
    }
});
