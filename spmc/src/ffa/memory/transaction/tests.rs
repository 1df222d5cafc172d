//! The transaction rules, case by case and property-style over random
//! sequences: no page ever has two owners, none is accessible after reclaim.

use super::*;
use crate::ffa::memory::descriptor::{DataAccess, InstructionAccess, MemAccessPermissions};

/// What a read-write borrower maps.
const RW: MemAccessPermissions = MemAccessPermissions { data: DataAccess::ReadWrite, instruction: InstructionAccess::NotExecutable };
const RO: MemAccessPermissions = MemAccessPermissions { data: DataAccess::ReadOnly, instruction: InstructionAccess::NotExecutable };

fn rcv(id: u16) -> Option<EndpointMemAccess> {
    Some(EndpointMemAccess { receiver: id, permissions: MemAccessPermissions { data: DataAccess::ReadWrite, instruction: InstructionAccess::NotSpecified }, flags: 0, impdef: [0; 2] })
}

fn new(op: MemOp, sender: u16, receivers: &[u16], list: &[Constituent]) -> NewTransaction {
    let mut r = [None; MAX_RECEIVERS];
    for (n, id) in receivers.iter().enumerate() {
        r[n] = rcv(*id);
    }
    NewTransaction {
        op,
        sender,
        attributes: MemRegionAttributes(0x2f),
        flags: 0,
        tag: 0,
        receivers: r,
        non_secure: sender == 0,
        header_len: 80,
        total_page_count: list.iter().map(|c| c.page_count).sum(),
        address_range_count: list.len() as u32,
    }
}

fn c(address: u64, page_count: u32) -> Constituent {
    Constituent { address, page_count }
}

fn yes(_: &Constituent) -> bool {
    true
}

fn store() -> Box<MemoryStore> {
    Box::new(MemoryStore::new())
}

#[test]
fn share_retrieve_relinquish_reclaim() {
    let mut s = store();
    let list = [c(0x6000_0000, 2)];
    let (h, done) = s.begin(new(MemOp::Share, 0, &[0x8001, 0x8002], &list), &list, &yes).unwrap();
    assert!(done && h & HANDLE_ALLOCATOR_SPMC != 0);
    assert_eq!(s.retrieve(h, 0x8003, RW, false), Err(FfaError::InvalidParameters), "not a receiver");
    assert_eq!(s.retrieve(h, 0x8001, RW, false).unwrap().1, Retrieval::First);
    s.retrieve(h, 0x8002, RW, false).unwrap();
    assert_eq!(s.reclaim(h, 0), Err(FfaError::Denied), "borrowed still");
    assert_eq!(s.reclaim(h, 0x8001), Err(FfaError::InvalidParameters), "not the owner");
    s.relinquish(h, 0x8001, false).unwrap();
    assert_eq!(s.relinquish(h, 0x8001, false), Err(FfaError::Denied), "twice");
    s.relinquish(h, 0x8002, false).unwrap();
    s.reclaim(h, 0).unwrap();
    assert!(s.get(h).is_none());
    assert_eq!(s.retrieve(h, 0x8001, RW, false), Err(FfaError::InvalidParameters), "gone");
}

#[test]
fn pages_in_one_transaction_only() {
    let mut s = store();
    let a = [c(0x6000_0000, 4)];
    let (h, _) = s.begin(new(MemOp::Lend, 0, &[0x8001], &a), &a, &yes).unwrap();
    let b = [c(0x6000_3000, 1)];
    assert_eq!(s.begin(new(MemOp::Share, 0, &[0x8002], &b), &b, &yes).err(), Some(FfaError::Denied));
    let dup = [c(0x7000_0000, 2), c(0x7000_1000, 1)];
    assert_eq!(s.begin(new(MemOp::Share, 0, &[0x8002], &dup), &dup, &yes).err(), Some(FfaError::InvalidParameters), "overlap inside");
    let not_mine = [c(0x7000_0000, 1)];
    assert_eq!(s.begin(new(MemOp::Share, 0, &[0x8002], &not_mine), &not_mine, &|_| false).err(), Some(FfaError::Denied));
    s.reclaim(h, 0).unwrap();
    assert!(s.begin(new(MemOp::Share, 0, &[0x8002], &b), &b, &yes).is_ok(), "free again");
}

#[test]
fn fragments_and_a_thousand_constituents() {
    let mut s = store();
    let list: Vec<Constituent> = (0..1200u64).map(|n| c(0x6000_0000 + n * 0x2000, 1)).collect();
    let (h, done) = s.begin(new(MemOp::Share, 0, &[0x8001], &list), &list[..400], &yes).unwrap();
    assert!(!done);
    assert_eq!(s.retrieve(h, 0x8001, RW, false), Err(FfaError::InvalidParameters), "incomplete");
    assert_eq!(s.fragment(h, 0x8002, &list[400..800], &yes), Err(FfaError::InvalidParameters), "not the sender");
    assert!(!s.fragment(h, 0, &list[400..800], &yes).unwrap());
    assert!(s.fragment(h, 0, &list[800..], &yes).unwrap());
    assert_eq!(s.fragment(h, 0, &list[..1], &yes), Err(FfaError::InvalidParameters), "complete already");
    assert_eq!(s.constituents(s.get(h).unwrap()).len(), 1200);
    s.retrieve(h, 0x8001, RW, false).unwrap();
    // A fragment overlapping an earlier one ends the transaction.
    let other: Vec<Constituent> = (0..3u64).map(|n| c(0x9000_0000 + n * 0x1000, 1)).collect();
    let (h2, _) = s.begin(new(MemOp::Share, 0, &[0x8001], &other), &other[..1], &yes).unwrap();
    assert_eq!(s.fragment(h2, 0, &other[..1], &yes), Err(FfaError::InvalidParameters));
    assert!(s.get(h2).is_none());
}

#[test]
fn page_count_must_match() {
    let mut s = store();
    let list = [c(0x6000_0000, 1)];
    let mut n = new(MemOp::Share, 0, &[0x8001], &list);
    n.total_page_count = 2;
    assert_eq!(s.begin(n, &list, &yes).err(), Some(FfaError::InvalidParameters));
    assert_eq!(s.transactions().count(), 0, "nothing left behind");
}

#[test]
fn donation_moves_ownership() {
    let mut s = store();
    let list = [c(0x0e40_0000, 1)];
    let owns_1 = |x: &Constituent| x.address >= 0x0e40_0000 && x.address < 0x0e50_0000;
    let (h, _) = s.begin(new(MemOp::Donate, 0x8001, &[0x8002], &list), &list, &owns_1).unwrap();
    s.retrieve(h, 0x8002, RW, false).unwrap();
    s.finish_donation(h);
    assert!(s.get(h).is_none(), "no handle after a donation");
    // The donor no longer owns it; the receiver does.
    assert_eq!(s.begin(new(MemOp::Share, 0x8001, &[0x8003], &list), &list, &owns_1).err(), Some(FfaError::Denied));
    assert!(s.begin(new(MemOp::Share, 0x8002, &[0x8003], &list), &list, &|_| false).is_ok());
}

#[test]
fn out_of_handles_and_pool() {
    let mut s = store();
    for n in 0..MAX_TRANSACTIONS as u64 {
        let l = [c(0x6000_0000 + n * 0x1000, 1)];
        s.begin(new(MemOp::Share, 0, &[0x8001], &l), &l, &yes).unwrap();
    }
    let l = [c(0x7000_0000, 1)];
    assert_eq!(s.begin(new(MemOp::Share, 0, &[0x8001], &l), &l, &yes).err(), Some(FfaError::NoMemory));
    let mut s = store();
    let mut n = new(MemOp::Share, 0, &[0x8001], &l);
    n.address_range_count = POOL_SIZE as u32 + 1;
    assert_eq!(s.begin(n, &l, &yes).err(), Some(FfaError::NoMemory));
}

/// Random sequences of operations by three endpoints over a small set of
/// pages; after every step: no page in two live transactions, and a borrower
/// holds pages only of a live transaction it retrieved.
#[test]
fn property_no_page_has_two_owners() {
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut s = store();
    let ids = [0u16, 0x8001, 0x8002];
    let mut handles: Vec<u64> = Vec::new();
    for _ in 0..20_000 {
        match rnd(5) {
            0 => {
                let sender = ids[rnd(3) as usize];
                let rcv = ids[(rnd(2) as usize + 1 + ids.iter().position(|&x| x == sender).unwrap()) % 3];
                if rcv == 0 {
                    continue;
                }
                let l = [c(0x6000_0000 + rnd(8) * 0x1000, 1 + rnd(3) as u32)];
                let op = [MemOp::Share, MemOp::Lend][rnd(2) as usize];
                if let Ok((h, _)) = s.begin(new(op, sender, &[rcv], &l), &l, &yes) {
                    handles.push(h);
                }
            }
            1 if !handles.is_empty() => {
                let h = handles[rnd(handles.len() as u64) as usize];
                let r = ids[1 + rnd(2) as usize];
                let _ = s.retrieve(h, r, RW, false);
            }
            2 if !handles.is_empty() => {
                let h = handles[rnd(handles.len() as u64) as usize];
                let r = ids[1 + rnd(2) as usize];
                let _ = s.relinquish(h, r, false);
            }
            3 if !handles.is_empty() => {
                let h = handles[rnd(handles.len() as u64) as usize];
                let o = ids[rnd(3) as usize];
                if s.reclaim(h, o).is_ok() {
                    handles.retain(|&x| x != h);
                }
            }
            _ => {}
        }
        let live: Vec<&Transaction> = s.transactions().collect();
        for (a, ta) in live.iter().enumerate() {
            for tb in &live[a + 1..] {
                for ca in s.constituents(ta) {
                    assert!(!s.constituents(tb).iter().any(|cb| cb.overlaps(ca)), "a page in two transactions");
                }
            }
        }
        for h in &handles {
            assert!(s.get(*h).is_some(), "a reclaimed handle is gone from the list");
        }
    }
}

#[test]
fn a_borrower_retrieves_again_and_gives_each_back() {
    let mut s = store();
    let list = [c(0x6000_0000, 1)];
    let (h, _) = s.begin(new(MemOp::Lend, 0, &[0x8001, 0x8002], &list), &list, &yes).unwrap();
    assert_eq!(s.retrieve(h, 0x8001, RW, false).unwrap().1, Retrieval::First);
    assert_eq!(s.retrieve(h, 0x8001, RO, false).unwrap().1, Retrieval::Again(RW), "less is fine");
    let x = MemAccessPermissions { data: DataAccess::ReadWrite, instruction: InstructionAccess::Executable };
    assert_eq!(s.retrieve(h, 0x8001, x, false), Err(FfaError::Denied), "more than the first got");
    assert_eq!(s.get(h).unwrap().receiver(0x8001).unwrap().retrievals, 2, "a refused retrieve counts nothing");
    s.retrieve(h, 0x8002, RO, true).unwrap();
    let (_, r) = s.relinquish(h, 0x8001, false).unwrap();
    assert_eq!(r, Relinquished { last: false, zero: false });
    assert_eq!(s.reclaim(h, 0), Err(FfaError::Denied), "one retrieval still held");
    let (_, r) = s.relinquish(h, 0x8001, false).unwrap();
    assert_eq!(r, Relinquished { last: true, zero: false }, "0x8002 still holds it");
    let (_, r) = s.relinquish(h, 0x8002, false).unwrap();
    assert_eq!(r, Relinquished { last: true, zero: true }, "0x8002's retrieve asked for zeroing");
    assert_eq!(s.relinquish(h, 0x8002, false), Err(FfaError::Denied));
    // A fresh retrieval maps anew, with what it asks now.
    assert_eq!(s.retrieve(h, 0x8001, RO, false).unwrap().1, Retrieval::First);
    s.unretrieve(h, 0x8001);
    s.reclaim(h, 0).unwrap();
}

#[test]
fn a_failed_relinquish_is_undone() {
    let mut s = store();
    let list = [c(0x6000_0000, 1)];
    let (h, _) = s.begin(new(MemOp::Lend, 0, &[0x8001], &list), &list, &yes).unwrap();
    s.retrieve(h, 0x8001, RW, false).unwrap();
    let before = *s.get(h).unwrap();
    let (_, r) = s.relinquish(h, 0x8001, true).unwrap();
    assert!(r.last && r.zero);
    s.unrelinquish(&before);
    assert_eq!(*s.get(h).unwrap(), before);
    // Asked by one borrower, done when the last one leaves.
    let list = [c(0x6100_0000, 1)];
    let (h, _) = s.begin(new(MemOp::Lend, 0, &[0x8001, 0x8002], &list), &list, &yes).unwrap();
    s.retrieve(h, 0x8001, RW, false).unwrap();
    s.retrieve(h, 0x8002, RW, false).unwrap();
    assert_eq!(s.relinquish(h, 0x8001, true).unwrap().1, Relinquished { last: true, zero: false });
    assert_eq!(s.relinquish(h, 0x8002, false).unwrap().1, Relinquished { last: true, zero: true });
}

/// The store as a state machine under proptest: any sequence of sends,
/// retrieves, relinquishes and reclaims (shrunk to the shortest that
/// fails) keeps every page in at most one live transaction, never reclaims
/// a handle a borrower holds, and forgets a reclaimed handle.
mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Send { share: bool, sender: usize, receiver: usize, page: u64, pages: u32 },
        Retrieve { handle: usize, receiver: usize },
        Relinquish { handle: usize, receiver: usize },
        Reclaim { handle: usize, owner: usize },
    }

    const IDS: [u16; 3] = [0, 0x8001, 0x8002];

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<bool>(), 0usize..3, 0usize..3, 0u64..12, 1u32..4).prop_map(|(share, sender, receiver, page, pages)| Op::Send { share, sender, receiver, page, pages }),
            (any::<usize>(), 1usize..3).prop_map(|(handle, receiver)| Op::Retrieve { handle, receiver }),
            (any::<usize>(), 1usize..3).prop_map(|(handle, receiver)| Op::Relinquish { handle, receiver }),
            (any::<usize>(), 0usize..3).prop_map(|(handle, owner)| Op::Reclaim { handle, owner }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn invariants_hold(ops in proptest::collection::vec(op(), 1..80)) {
            let mut s = store();
            let mut handles: Vec<u64> = Vec::new();
            for o in ops {
                match o {
                    Op::Send { share, sender, receiver, page, pages } => {
                        let (from, to) = (IDS[sender], IDS[receiver]);
                        if from == to || to == 0 {
                            continue;
                        }
                        let list = [c(0x6000_0000 + page * 0x1000, pages)];
                        let kind = if share { MemOp::Share } else { MemOp::Lend };
                        if let Ok((h, _)) = s.begin(new(kind, from, &[to], &list), &list, &yes) {
                            handles.push(h);
                        }
                    }
                    Op::Retrieve { handle, receiver } if !handles.is_empty() => {
                        let _ = s.retrieve(handles[handle % handles.len()], IDS[receiver], RW, false);
                    }
                    Op::Relinquish { handle, receiver } if !handles.is_empty() => {
                        let _ = s.relinquish(handles[handle % handles.len()], IDS[receiver], false);
                    }
                    Op::Reclaim { handle, owner } if !handles.is_empty() => {
                        let h = handles[handle % handles.len()];
                        let held = s.get(h).is_some_and(|t| t.receivers().any(|r| r.retrieved()));
                        if s.reclaim(h, IDS[owner]).is_ok() {
                            prop_assert!(!held, "reclaimed while a borrower held it");
                            prop_assert!(s.get(h).is_none(), "a reclaimed handle is gone");
                            handles.retain(|x| *x != h);
                        }
                    }
                    _ => {}
                }
                let live: Vec<&Transaction> = s.transactions().filter(|t| !t.is_donated()).collect();
                for (a, ta) in live.iter().enumerate() {
                    for tb in &live[a + 1..] {
                        for ca in s.constituents(ta) {
                            prop_assert!(!s.constituents(tb).iter().any(|cb| cb.overlaps(ca)), "a page in two live transactions");
                        }
                    }
                }
            }
        }
    }
}
