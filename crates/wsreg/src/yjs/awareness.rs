//! A room's awareness: who is here (names, cursors), as the latest JSON state of each
//! client id, kept by the rules of y-protocols' `applyAwarenessUpdate`: an entry wins
//! when its clock is newer, or equal and it removes the state. A removed client's clock
//! is kept, so that an older state that arrives late cannot bring it back.
//!
//! Why not yrs's `Awareness`: it keeps the states in a `DashMap`, which allocates eight
//! cache-line-padded shards up front, and a table in each shard that holds a client —
//! 1.3 KiB of a 10 KiB room's 21 KiB in bench/yjs (heaptrack) — for a map that is only
//! ever used under the room's lock. It also owns the document, and carries observers
//! and a clock the server never uses. Here it is one `HashMap`, empty until a client
//! announces itself.

use std::collections::HashMap;
use std::sync::Arc;

use yrs::block::ClientID;
use yrs::sync::AwarenessUpdate;
use yrs::sync::awareness::AwarenessUpdateEntry;

/// A removed state, on the wire.
const NULL: &str = "null";

#[derive(Default)]
pub struct Awareness {
    clients: HashMap<ClientID, Client>,
}

struct Client {
    clock: u32,
    /// `None` once removed.
    state: Option<Arc<str>>,
}

/// What an applied update changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Clients whose state was added or replaced.
    pub set: Vec<ClientID>,
    /// Clients whose state was removed.
    pub removed: Vec<ClientID>,
}

impl Awareness {
    /// Applies a client's update; `None` when it changed nothing (every entry was
    /// older than what is known), which is then not passed on.
    pub fn apply(&mut self, update: AwarenessUpdate) -> Option<Changes> {
        let mut changes = Changes::default();
        for (id, entry) in update.clients {
            let state = (&*entry.json != NULL).then_some(entry.json);
            let Some(known) = self.clients.get_mut(&id) else {
                if state.is_some() {
                    changes.set.push(id);
                }
                let clock = entry.clock;
                self.clients.insert(id, Client { clock, state });
                continue;
            };
            let removes = known.clock == entry.clock && state.is_none() && known.state.is_some();
            if known.clock >= entry.clock && !removes {
                continue;
            }
            known.clock = entry.clock;
            match state {
                Some(state) => {
                    known.state = Some(state);
                    changes.set.push(id);
                }
                None if known.state.take().is_some() => changes.removed.push(id),
                None => {}
            }
        }
        (!changes.set.is_empty() || !changes.removed.is_empty()).then_some(changes)
    }

    /// Every present state, as one update for a client that joins; `None` if there is
    /// none.
    pub fn all(&self) -> Option<AwarenessUpdate> {
        let clients: HashMap<_, _> = self
            .clients
            .iter()
            .filter_map(|(id, client)| {
                let json = client.state.clone()?;
                Some((
                    *id,
                    AwarenessUpdateEntry {
                        clock: client.clock,
                        json,
                    },
                ))
            })
            .collect();
        (!clients.is_empty()).then_some(AwarenessUpdate { clients })
    }

    /// Removes the states of `gone` (a connection that left), each with a newer clock;
    /// returns the update that tells the others, `None` if none of them had a state.
    pub fn remove(&mut self, gone: impl IntoIterator<Item = ClientID>) -> Option<AwarenessUpdate> {
        let clients: HashMap<_, _> = gone
            .into_iter()
            .filter_map(|id| {
                let client = self.clients.get_mut(&id)?;
                client.state.take()?;
                client.clock += 1;
                Some((
                    id,
                    AwarenessUpdateEntry {
                        clock: client.clock,
                        json: NULL.into(),
                    },
                ))
            })
            .collect();
        (!clients.is_empty()).then_some(AwarenessUpdate { clients })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(entries: &[(u64, u32, &str)]) -> AwarenessUpdate {
        let clients = entries
            .iter()
            .map(|&(id, clock, json)| {
                (
                    ClientID::new(id),
                    AwarenessUpdateEntry {
                        clock,
                        json: json.into(),
                    },
                )
            })
            .collect();
        AwarenessUpdate { clients }
    }

    fn ids(ids: Vec<ClientID>) -> Vec<u64> {
        let mut ids: Vec<u64> = ids.iter().map(ClientID::get).collect();
        ids.sort();
        ids
    }

    fn states(awareness: &Awareness) -> Vec<(u64, u32, String)> {
        let mut all: Vec<_> = awareness
            .all()
            .map(|u| u.clients)
            .unwrap_or_default()
            .into_iter()
            .map(|(id, e)| (id.get(), e.clock, e.json.to_string()))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn a_newer_clock_wins_and_an_older_one_changes_nothing() {
        let mut a = Awareness::default();
        let set = a.apply(update(&[(1, 1, r#"{"n":"a"}"#), (2, 5, r#"{"n":"b"}"#)]));
        assert_eq!(ids(set.expect("both are new").set), [1, 2]);
        assert_eq!(a.apply(update(&[(1, 1, r#"{"n":"late"}"#)])), None);
        assert_eq!(a.apply(update(&[(2, 4, r#"{"n":"older"}"#)])), None);
        let changes = a.apply(update(&[(1, 2, r#"{"n":"A"}"#)]));
        assert_eq!(ids(changes.expect("newer").set), [1]);
        assert_eq!(
            states(&a),
            [
                (1, 2, r#"{"n":"A"}"#.to_string()),
                (2, 5, r#"{"n":"b"}"#.to_string())
            ]
        );
    }

    #[test]
    fn a_state_is_removed_by_null_at_its_own_clock_or_newer() {
        let mut a = Awareness::default();
        a.apply(update(&[(1, 3, "{}"), (2, 3, "{}")]));
        let removed = a.apply(update(&[(1, 3, NULL)])).expect("same clock, null");
        assert_eq!(ids(removed.removed), [1]);
        let removed = a.apply(update(&[(2, 4, NULL)])).expect("newer, null");
        assert_eq!(ids(removed.removed), [2]);
        assert!(a.all().is_none());
        // What was removed stays removed for an older state that arrives late ...
        assert_eq!(a.apply(update(&[(1, 2, "{}")])), None);
        // ... and a null for a client never seen changes nothing.
        assert_eq!(a.apply(update(&[(9, 1, NULL)])), None);
    }

    #[test]
    fn a_client_may_start_at_clock_zero_but_not_repeat_it() {
        let mut a = Awareness::default();
        assert_eq!(ids(a.apply(update(&[(7, 0, "{}")])).expect("new").set), [7]);
        assert_eq!(a.apply(update(&[(7, 0, r#"{"again":1}"#)])), None);
        assert_eq!(states(&a), [(7, 0, "{}".to_string())]);
    }

    #[test]
    fn removing_a_connections_clients_tells_the_others_with_newer_clocks() {
        let mut a = Awareness::default();
        a.apply(update(&[(1, 4, "{}"), (2, 1, "{}")]));
        let told = a
            .remove([1, 3].map(ClientID::new))
            .expect("client 1 had a state");
        let entry = &told.clients[&ClientID::new(1)];
        assert_eq!((entry.clock, &*entry.json), (5, NULL));
        assert_eq!(told.clients.len(), 1, "client 3 was never here");
        assert_eq!(a.remove([ClientID::new(1)]), None, "already gone");
        assert_eq!(states(&a), [(2, 1, "{}".to_string())]);
        // The client's own late renewal at its old clock does not bring it back.
        assert_eq!(a.apply(update(&[(1, 4, "{}")])), None);
    }
}
