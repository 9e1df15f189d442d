//! The registry parsers and validator on arbitrary bytes: the legacy file
//! (`wsreg::registry::model::parse`) and an entry file of version 2
//! (`model::parse_entry_file`).
//!
//! Beyond not panicking: whatever they accept obeys the format's rules, and the canonical
//! form a writer would write back reads again as exactly the same entries (so a keeper
//! rewriting its file can never lose or change a field).

use std::collections::HashSet;

use wsreg::registry::model::{self, MAX_ENTRIES, MAX_FILE_BYTES};

pub fn check(data: &[u8]) {
    check_entry_file(data);
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

fn check_entry_file(data: &[u8]) {
    let Ok(entry) = model::parse_entry_file(data, "fuzz.json") else {
        return;
    };
    entry.validate().expect("an accepted entry is valid");
    assert_eq!(entry.id, "fuzz");
    let written = model::entry_file_json(&entry);
    let reread = model::parse_entry_file(written.as_bytes(), "fuzz.json")
        .expect("the canonical form parses");
    assert_eq!(reread, entry, "round trip changed the entry");
    assert_eq!(
        model::entry_file_json(&reread),
        written,
        "canonical form is stable"
    );
}
