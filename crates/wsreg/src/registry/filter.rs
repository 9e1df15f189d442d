//! The selection a reader asks for: `?project=P&kind=K` on the HTTP API, `--project` and
//! `--kind` on the command line. An absent criterion matches everything.

use std::borrow::Borrow;

use serde::Deserialize;

use super::model::Entry;

/// Entries of one project and/or one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Filter {
    pub project: Option<String>,
    pub kind: Option<String>,
}

impl Filter {
    /// Whether the entry is selected.
    pub fn matches(&self, entry: &Entry) -> bool {
        let project_ok = self
            .project
            .as_deref()
            .is_none_or(|p| entry.project.as_deref() == Some(p));
        let kind_ok = self.kind.as_deref().is_none_or(|k| entry.kind == k);
        project_ok && kind_ok
    }

    /// The selected entries, in order (entries or shared entries alike).
    pub fn apply<'a, E: Borrow<Entry>>(
        &'a self,
        entries: &'a [E],
    ) -> impl Iterator<Item = &'a E> + 'a {
        entries.iter().filter(|e| self.matches((*e).borrow()))
    }
}
