//! Linux's swap-area header (`mkswap`'s format, "SWAPSPACE2", version 1), as found in the
//! first page of a swap device.
//!
//! ```text
//!  0      1024     1028       1032          1036   1052     1068          1536   4086   4096
//!  +------+--------+----------+-------------+------+--------+--- ... -----+------+------+
//!  | boot | version| last_page| nr_badpages | uuid | volume | bad pages   |  ..  | magic|
//!  +------+--------+----------+-------------+------+--------+--- ... -----+------+------+
//! ```
//!
//! Slot `n` of the area is page `n` of the device; page 0 (this header) and the pages
//! listed as bad are never used. Fields are in the byte order of the machine that wrote
//! them; only little-endian areas are accepted (what `mkswap` writes on x86-64 and
//! riscv64 alike).

/// The header occupies one 4 KiB page.
pub const HEADER_SIZE: usize = 4096;
/// The signature in the header's last 10 bytes.
pub const MAGIC: &[u8; 10] = b"SWAPSPACE2";

const VERSION_AT: usize = 1024;
const LAST_PAGE_AT: usize = 1028;
const NR_BAD_AT: usize = 1032;
const UUID_AT: usize = 1036;
const LABEL_AT: usize = 1052;
const BAD_PAGES_AT: usize = 1536;
/// Most bad pages the header can list (the words between the list and the signature).
pub const MAX_BAD_PAGES: usize = (HEADER_SIZE - MAGIC.len() - BAD_PAGES_AT) / 4;

/// Why a page is not a usable swap header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapHeaderError {
    /// Shorter than a page.
    Truncated,
    /// No `SWAPSPACE2` signature (not a swap area, or the old format).
    NoSignature,
    /// A version other than 1.
    Version(u32),
    /// `last_page` is 0 or beyond the device.
    BadSize,
    /// More bad pages than the header can hold, or a bad page outside the area.
    BadPages,
}

/// A parsed swap header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapHeader<'a> {
    /// The last usable page (slot): slots are `1..=last_page`.
    pub last_page: u32,
    /// The area's UUID.
    pub uuid: [u8; 16],
    /// The label (`mkswap -L`), up to its first NUL.
    pub label: &'a [u8],
    bad: &'a [u8],
}

fn word(page: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([page[at], page[at + 1], page[at + 2], page[at + 3]])
}

impl<'a> SwapHeader<'a> {
    /// Parses the first page of a device of `device_pages` 4 KiB pages.
    pub fn parse(page: &'a [u8], device_pages: u64) -> Result<SwapHeader<'a>, SwapHeaderError> {
        let page = page.get(..HEADER_SIZE).ok_or(SwapHeaderError::Truncated)?;
        if &page[HEADER_SIZE - MAGIC.len()..] != MAGIC {
            return Err(SwapHeaderError::NoSignature);
        }
        let version = word(page, VERSION_AT);
        if version != 1 {
            return Err(SwapHeaderError::Version(version));
        }
        let last_page = word(page, LAST_PAGE_AT);
        if last_page == 0 || u64::from(last_page) >= device_pages {
            return Err(SwapHeaderError::BadSize);
        }
        let nr_bad = word(page, NR_BAD_AT) as usize;
        if nr_bad > MAX_BAD_PAGES {
            return Err(SwapHeaderError::BadPages);
        }
        let bad = &page[BAD_PAGES_AT..BAD_PAGES_AT + 4 * nr_bad];
        let header = SwapHeader {
            last_page,
            uuid: page[UUID_AT..UUID_AT + 16].try_into().unwrap_or([0; 16]),
            label: {
                let l = &page[LABEL_AT..LABEL_AT + 16];
                &l[..l.iter().position(|&b| b == 0).unwrap_or(l.len())]
            },
            bad,
        };
        if header.bad_pages().any(|p| p == 0 || p > last_page) {
            return Err(SwapHeaderError::BadPages);
        }
        Ok(header)
    }

    /// The pages listed as bad (never used as slots).
    pub fn bad_pages(&self) -> impl Iterator<Item = u32> + '_ {
        self.bad
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn header(last: u32, bad: &[u32]) -> alloc::vec::Vec<u8> {
        let mut p = vec![0u8; HEADER_SIZE];
        p[VERSION_AT..VERSION_AT + 4].copy_from_slice(&1u32.to_le_bytes());
        p[LAST_PAGE_AT..LAST_PAGE_AT + 4].copy_from_slice(&last.to_le_bytes());
        p[NR_BAD_AT..NR_BAD_AT + 4].copy_from_slice(&(bad.len() as u32).to_le_bytes());
        for (i, b) in bad.iter().enumerate() {
            let at = BAD_PAGES_AT + 4 * i;
            p[at..at + 4].copy_from_slice(&b.to_le_bytes());
        }
        p[LABEL_AT..LABEL_AT + 4].copy_from_slice(b"swap");
        p[HEADER_SIZE - 10..].copy_from_slice(MAGIC);
        p
    }

    #[test]
    fn a_good_header_is_read() {
        let p = header(255, &[7, 9]);
        let h = SwapHeader::parse(&p, 256).unwrap();
        assert_eq!(h.last_page, 255);
        assert_eq!(h.label, b"swap");
        assert_eq!(h.bad_pages().collect::<alloc::vec::Vec<_>>(), [7, 9]);
    }

    #[test]
    fn hostile_headers_are_refused() {
        assert_eq!(
            SwapHeader::parse(&[0; 100], 256),
            Err(SwapHeaderError::Truncated)
        );
        let mut p = header(255, &[]);
        p[HEADER_SIZE - 1] = b'1';
        assert_eq!(
            SwapHeader::parse(&p, 256),
            Err(SwapHeaderError::NoSignature)
        );
        let p = header(256, &[]);
        assert_eq!(SwapHeader::parse(&p, 256), Err(SwapHeaderError::BadSize));
        let p = header(0, &[]);
        assert_eq!(SwapHeader::parse(&p, 256), Err(SwapHeaderError::BadSize));
        let p = header(100, &[101]);
        assert_eq!(SwapHeader::parse(&p, 256), Err(SwapHeaderError::BadPages));
        let p = header(100, &[0]);
        assert_eq!(SwapHeader::parse(&p, 256), Err(SwapHeaderError::BadPages));
        let mut p = header(100, &[]);
        p[NR_BAD_AT..NR_BAD_AT + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(SwapHeader::parse(&p, 256), Err(SwapHeaderError::BadPages));
        let mut p = header(100, &[]);
        p[VERSION_AT] = 2;
        assert_eq!(SwapHeader::parse(&p, 256), Err(SwapHeaderError::Version(2)));
    }

    #[test]
    fn every_byte_flip_is_an_error_or_a_consistent_header() {
        let good = header(200, &[3, 4, 5]);
        for i in 0..HEADER_SIZE {
            for bit in 0..8 {
                let mut p = good.clone();
                p[i] ^= 1 << bit;
                if let Ok(h) = SwapHeader::parse(&p, 256) {
                    assert!(h.last_page >= 1 && h.last_page < 256);
                    assert!(h.bad_pages().all(|b| b >= 1 && b <= h.last_page));
                }
            }
        }
    }
}
