//! The registry parser and validator (`wsreg::registry::model::parse`) on arbitrary bytes.
//!
//! Beyond not panicking: whatever it accepts obeys the format's rules, and the canonical
//! document it would write back reads again as exactly the same entries (so a writer can
//! never turn a readable file into one that loses or changes an entry).

use std::collections::HashSet;

use wsreg::registry::model::{self, MAX_ENTRIES, MAX_FILE_BYTES};

pub fn check(data: &[u8]) {
    let parsed = match model::parse(data) {
        Ok(parsed) => parsed,
        Err(_) => return,
    };
    assert!(data.len() as u64 <= MAX_FILE_BYTES);
    assert!(parsed.entries.len() + parsed.skipped.len() <= MAX_ENTRIES);
    let mut ids = HashSet::new();
    for entry in &parsed.entries {
        entry.validate().expect("an accepted entry is valid");
        assert!(ids.insert(entry.id.as_str()), "duplicate id {:?}", entry.id);
    }
    let written = model::to_json(&parsed.entries);
    let reread = model::parse(written.as_bytes()).expect("the canonical form parses");
    assert!(reread.skipped.is_empty(), "{:?}", reread.skipped);
    assert_eq!(reread.entries, parsed.entries, "round trip changed entries");
    assert_eq!(
        model::to_json(&reread.entries),
        written,
        "canonical form is stable"
    );
}
