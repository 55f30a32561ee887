//! The member list as data, free of I/O: each machine keeps a `Ledger` of what it knows (who was
//! added, by whom, who was removed and who allowed back), publishes it as one file named after
//! itself in the members folder, and reads everyone else's. Merging is a union, so the order in
//! which ledgers arrive does not matter and every member converges on the same view:
//!
//! - a machine is a member once any trusted ledger adds it;
//! - its latest verdict decides whether it is removed: a removal stands until an `allow` made
//!   after it, and a removal and an allow at the same millisecond count as a removal (tombstones win);
//! - a machine's statements about itself count for nothing (it cannot allow itself back), and once
//!   it is removed its whole ledger counts for nothing (a removed machine cannot add anyone);
//! - each machine copies every entry it trusts into its own ledger, so a removal survives the
//!   loss (or deletion by a misbehaving member) of the ledger that first said it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::device_id::DeviceId;

/// One machine's published knowledge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ledger {
    /// The machine whose ledger this is; a file whose name is another ID is ignored.
    pub writer: Option<DeviceId>,
    #[serde(default)]
    pub added: Vec<Added>,
    #[serde(default)]
    pub removed: Vec<Verdict>,
    #[serde(default)]
    pub allowed: Vec<Verdict>,
}

/// A machine joined the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Added {
    pub device: DeviceId,
    pub name: String,
    /// Where it could be dialled when it paired (a hint; Syncthing learns the rest).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The member that paired with it; `None` for the first machine and for meshes that
    /// predate the member list.
    pub by: Option<DeviceId>,
    pub at_ms: u64,
}

/// A removal, or an allow that undoes the removals before it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub device: DeviceId,
    pub by: DeviceId,
    pub at_ms: u64,
}

/// What the mesh looks like from here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// Members (this machine included), each with the earliest record of its joining.
    pub members: BTreeMap<DeviceId, Added>,
    /// Removed machines, with the removal that stands.
    pub removed: BTreeMap<DeviceId, Removed>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub verdict: Verdict,
    /// Its name when it was a member, if any ledger knew it.
    pub name: Option<String>,
}

impl View {
    pub fn is_removed(&self, device: &DeviceId) -> bool {
        self.removed.contains_key(device)
    }
}

impl Ledger {
    pub fn new(writer: DeviceId) -> Ledger {
        Ledger { writer: Some(writer), ..Default::default() }
    }

    /// Records that `entry.device` joined. Per device one record is kept, the same in every
    /// ledger whatever the order: one that names who added the machine beats one that does not
    /// (a mesh from before the member list, or a joiner's note about its host), then the
    /// earliest; addresses are filled in from another record if it had none. Returns whether
    /// anything changed.
    pub fn add(&mut self, entry: Added) -> bool {
        match self.added.iter_mut().find(|a| a.device == entry.device) {
            None => {
                self.added.push(entry);
                true
            }
            Some(existing) if rank(&entry) < rank(existing) => {
                let addresses = if entry.addresses.is_empty() { existing.addresses.clone() } else { entry.addresses.clone() };
                *existing = Added { addresses, ..entry };
                true
            }
            Some(existing) if existing.addresses.is_empty() && !entry.addresses.is_empty() => {
                existing.addresses = entry.addresses;
                true
            }
            Some(_) => false,
        }
    }

    pub fn remove(&mut self, verdict: Verdict) -> bool {
        insert_unique(&mut self.removed, verdict)
    }

    pub fn allow(&mut self, verdict: Verdict) -> bool {
        insert_unique(&mut self.allowed, verdict)
    }

    /// Whether this ledger says anything about `device` joining.
    pub fn knows(&self, device: &DeviceId) -> bool {
        self.added.iter().any(|a| a.device == *device)
    }

    /// Copies every entry of `others` into this ledger; returns whether it changed.
    pub fn absorb<'a>(&mut self, others: impl IntoIterator<Item = &'a Ledger>) -> bool {
        let mut changed = false;
        for other in others {
            for entry in &other.added {
                changed |= self.add(entry.clone());
            }
            for verdict in other.statements_about_others(|l| &l.removed) {
                changed |= self.remove(verdict.clone());
            }
            for verdict in other.statements_about_others(|l| &l.allowed) {
                changed |= self.allow(verdict.clone());
            }
        }
        changed
    }

    /// Verdicts a ledger makes about machines other than its writer.
    fn statements_about_others<'a>(&'a self, pick: impl Fn(&Ledger) -> &Vec<Verdict>) -> impl Iterator<Item = &'a Verdict> + 'a {
        let writer = self.writer;
        let list: &'a Vec<Verdict> = pick(self);
        list.iter().filter(move |v| Some(v.device) != writer)
    }
}

fn rank(entry: &Added) -> (bool, u64, Option<DeviceId>) {
    (entry.by.is_none(), entry.at_ms, entry.by)
}

fn insert_unique(list: &mut Vec<Verdict>, verdict: Verdict) -> bool {
    if list.contains(&verdict) {
        return false;
    }
    list.push(verdict);
    list.sort();
    true
}

/// The view from `own` (always trusted) and the ledgers of the others.
pub fn view(own: &Ledger, others: &[Ledger]) -> View {
    // First pass: who is removed according to everyone; then again without the ledgers of the
    // machines that pass removed, so a removed machine cannot vote itself (or a friend) back.
    let everyone: Vec<&Ledger> = std::iter::once(own).chain(others).collect();
    let removed_first = removals(&everyone);
    let trusted: Vec<&Ledger> = std::iter::once(own)
        .chain(others.iter().filter(|l| l.writer.is_some_and(|w| !removed_first.contains_key(&w))))
        .collect();
    let removed_verdicts = removals(&trusted);
    let mut merged = Ledger::default();
    for ledger in &trusted {
        for entry in &ledger.added {
            merged.add(entry.clone());
        }
    }
    let mut view = View::default();
    for (device, verdict) in removed_verdicts {
        let name = merged.added.iter().find(|a| a.device == device).map(|a| a.name.clone());
        view.removed.insert(device, Removed { verdict, name });
    }
    for entry in merged.added {
        if !view.removed.contains_key(&entry.device) {
            view.members.insert(entry.device, entry);
        }
    }
    view
}

/// Devices whose latest verdict among `ledgers` is a removal (a tie is a removal).
fn removals(ledgers: &[&Ledger]) -> BTreeMap<DeviceId, Verdict> {
    let mut latest: BTreeMap<DeviceId, (u64, bool, Verdict)> = BTreeMap::new();
    for ledger in ledgers {
        let verdicts = ledger
            .statements_about_others(|l| &l.removed)
            .map(|v| (v, true))
            .chain(ledger.statements_about_others(|l| &l.allowed).map(|v| (v, false)));
        for (verdict, is_removal) in verdicts {
            let candidate = (verdict.at_ms, is_removal, verdict.clone());
            match latest.get(&verdict.device) {
                Some(current) if (current.0, current.1) >= (candidate.0, candidate.1) => {}
                _ => {
                    latest.insert(verdict.device, candidate);
                }
            }
        }
    }
    latest.into_iter().filter(|(_, (_, is_removal, _))| *is_removal).map(|(device, (_, _, verdict))| (device, verdict)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> DeviceId {
        DeviceId::from_bytes([n; 32])
    }

    fn added(device: u8, by: Option<u8>, at_ms: u64) -> Added {
        Added { device: id(device), name: format!("m{device}"), addresses: vec![], by: by.map(id), at_ms }
    }

    fn verdict(device: u8, by: u8, at_ms: u64) -> Verdict {
        Verdict { device: id(device), by: id(by), at_ms }
    }

    /// A (1) founded the mesh and added B (2); B added C (3).
    fn mesh() -> (Ledger, Ledger, Ledger) {
        let mut a = Ledger::new(id(1));
        a.add(added(1, None, 10));
        a.add(added(2, Some(1), 20));
        let mut b = Ledger::new(id(2));
        b.add(added(2, Some(1), 20));
        b.add(added(3, Some(2), 30));
        let mut c = Ledger::new(id(3));
        c.add(added(3, Some(2), 30));
        (a, b, c)
    }

    #[test]
    fn a_machine_added_through_any_member_is_a_member_everywhere() {
        let (a, b, c) = mesh();
        for (own, others) in [(&a, vec![b.clone(), c.clone()]), (&c, vec![a.clone(), b.clone()])] {
            let view = view(own, &others);
            assert_eq!(view.members.keys().copied().collect::<Vec<_>>(), vec![id(1), id(2), id(3)]);
            assert_eq!(view.members[&id(3)].by, Some(id(2)), "who added it");
        }
    }

    #[test]
    fn a_removal_wins_over_its_adds_and_sticks_when_its_ledger_is_lost() {
        let (mut a, mut b, c) = mesh();
        a.remove(verdict(3, 1, 100));
        let seen_by_b = view(&b, &[a.clone(), c.clone()]);
        assert!(seen_by_b.is_removed(&id(3)) && !seen_by_b.members.contains_key(&id(3)));
        assert_eq!(seen_by_b.removed[&id(3)].name.as_deref(), Some("m3"));
        // B copies the removal into its own ledger: losing A's ledger changes nothing.
        assert!(b.absorb([&a]));
        assert!(!b.absorb([&a]), "absorbing twice changes nothing");
        assert!(view(&b, &[c.clone()]).is_removed(&id(3)));
    }

    #[test]
    fn a_removed_machine_cannot_allow_itself_or_add_anyone() {
        let (mut a, b, mut c) = mesh();
        a.remove(verdict(3, 1, 100));
        c.allow(verdict(3, 3, 200));
        c.add(added(9, Some(3), 210));
        let view = view(&b, &[a.clone(), c.clone()]);
        assert!(view.is_removed(&id(3)));
        assert!(!view.members.contains_key(&id(9)), "a removed machine's ledger counts for nothing");
    }

    #[test]
    fn an_allow_after_the_removal_lets_it_back_and_a_tie_keeps_it_out() {
        let (mut a, mut b, c) = mesh();
        a.remove(verdict(3, 1, 100));
        b.allow(verdict(3, 2, 100));
        assert!(view(&b, &[a.clone(), c.clone()]).is_removed(&id(3)), "same millisecond: the removal wins");
        b.allow(verdict(3, 2, 101));
        let view = view(&b, &[a.clone(), c.clone()]);
        assert!(!view.is_removed(&id(3)));
        assert!(view.members.contains_key(&id(3)));
    }

    #[test]
    fn the_same_record_of_a_join_wins_in_any_order() {
        let mut one = Ledger::new(id(1));
        one.add(added(5, Some(2), 50));
        one.add(added(5, None, 40));
        let mut other = Ledger::new(id(2));
        other.add(added(5, None, 40));
        other.add(added(5, Some(2), 50));
        assert_eq!(one.added, other.added);
        assert_eq!(one.added[0].by, Some(id(2)), "a record naming who added it beats an anonymous one");
        one.add(added(5, Some(3), 45));
        assert_eq!(one.added[0].by, Some(id(3)), "then the earliest");
    }

    #[test]
    fn ledgers_round_trip_as_json() {
        let (mut a, _, _) = mesh();
        a.remove(verdict(3, 1, 100));
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Ledger>(&text).unwrap(), a);
    }
}
