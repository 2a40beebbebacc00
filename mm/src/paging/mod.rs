//! Sv39 page tables: map, unmap, protect and translate with 4 KiB, 2 MiB and 1 GiB leaves.
