//! `SwapHeader::parse` of an arbitrary first page (the device size from the input's
//! first bytes): refused, or a header whose slots and bad pages lie inside the device.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pagoda_formats::swap::SwapHeader;

fuzz_target!(|data: &[u8]| {
    let Some((size, page)) = data.split_first_chunk::<8>() else { return };
    let device_pages = u64::from_le_bytes(*size) % (1 << 40);
    if let Ok(h) = SwapHeader::parse(page, device_pages) {
        assert!(h.last_page > 0 && u64::from(h.last_page) < device_pages);
        for bad in h.bad_pages() {
            assert!((1..=h.last_page).contains(&bad));
        }
    }
});
