//! How many cases a property test runs: its own default, or `PROPTEST_CASES` from the
//! environment (`make fuzz-host` runs them long; proptest alone reads that variable only
//! for tests that keep its default configuration).

/// `PROPTEST_CASES` if set to a number, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
