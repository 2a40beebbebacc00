//! ASIDs with generations and precise, batched TLB maintenance.
