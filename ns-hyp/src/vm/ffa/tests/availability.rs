//! VM availability messages ([`super::super::availability`]) against the fake SPMC.

use super::*;
use super::super::availability::{Availability, Subscribers, PROP_VM_CREATED, PROP_VM_DESTROYED};

/// Echo (no subscription), one SP for both messages, one for "destroyed" only.
fn world() -> World {
    let mut both = sp(0x8002, 4);
    both.props |= PROP_VM_CREATED | PROP_VM_DESTROYED;
    let mut destroyed = sp(0x8003, 1);
    destroyed.props |= PROP_VM_DESTROYED;
    let w = World::with_sps(vec![sp(0x8001, 1), both, destroyed]);
    assert_eq!(w.p.discover_subscribers(&w.spmc), 2);
    w.spmc.seen.borrow_mut().clear();
    w
}

fn sent(w: &World) -> Vec<(u16, u64, u64, u64)> {
    w.spmc.seen.borrow().iter().filter(|r| r[0] as u32 == fid::FFA_MSG_SEND_DIRECT_REQ_32).map(|r| (r[1] as u16, r[2], r[3], r[5])).collect()
}

#[test]
fn subscribers_come_from_discovery() {
    let w = world();
    assert!(!*w.spmc.hyp_rx_owned.borrow(), "ns-hyp's RX buffer released");
    let mut d = vec![0u8; 3 * 24];
    for (i, (id, props)) in [(0x8001u16, 0u32), (0x8002, PROP_VM_CREATED), (0x0001, PROP_VM_CREATED)].iter().enumerate() {
        d[i * 24..i * 24 + 2].copy_from_slice(&id.to_le_bytes());
        d[i * 24 + 4..i * 24 + 8].copy_from_slice(&props.to_le_bytes());
    }
    let s = Subscribers::from_descriptors(&d, 3, 24);
    assert_eq!(s.wanting(Availability::Created).collect::<Vec<_>>(), [0x8002], "SPs only");
    assert_eq!(Subscribers::from_descriptors(&d, 3, 4), Subscribers::new(), "a descriptor size that cannot hold the properties");
    assert_eq!(Subscribers::from_descriptors(&d, 9, 24).wanting(Availability::Created).count(), 1, "a count past the buffer");
}

#[test]
fn each_life_is_announced_to_the_sps_that_want_it() {
    let w = world();
    assert_eq!(w.p.announce(1, Availability::Created, &w.spmc), (1, 1));
    // Framework flag | VM created (4), handle = life 1 << 16 | id, w5 = VM 1's id 2.
    assert_eq!(sent(&w), [(0x8002, 1 << 31 | 4, 1 << 16 | 2, 2)]);
    w.spmc.seen.borrow_mut().clear();
    assert_eq!(w.p.announce(1, Availability::Destroyed, &w.spmc), (2, 2));
    assert_eq!(sent(&w), [(0x8002, 1 << 31 | 6, 1 << 16 | 2, 2), (0x8003, 1 << 31 | 6, 1 << 16 | 2, 2)]);
    w.spmc.seen.borrow_mut().clear();
    assert_eq!(w.p.announce(1, Availability::Created, &w.spmc), (1, 1));
    assert_eq!(sent(&w)[0].2, 2 << 16 | 2, "a new life, a new handle");
    // A VM that is no endpoint: nothing.
    assert_eq!(w.p.announce(3, Availability::Created, &w.spmc), (0, 0));
}

#[test]
fn a_preempted_sp_is_run_until_it_answers_and_a_wrong_answer_is_not_counted() {
    let w = world();
    let mut interrupt = [0; 18];
    interrupt[0] = fid::FFA_INTERRUPT as u64;
    interrupt[1] = 0x8002 << 16 | 3;
    let mut resp = [0; 18];
    resp[0] = fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64;
    resp[1] = pack_endpoints(0x8002, 0);
    resp[2] = 1 << 31 | 5;
    w.spmc.script.borrow_mut().extend([interrupt, resp]);
    assert_eq!(w.p.announce(0, Availability::Created, &w.spmc), (1, 1));
    let run = w.spmc.seen.borrow()[1];
    assert_eq!((run[0] as u32, run[1]), (fid::FFA_RUN, 0x8002 << 16 | 3), "the context it left");
    // An SP answering with another message type, or an error: not answered.
    let mut wrong = resp;
    wrong[2] = 1 << 31 | 5; // "created" answered to "destroyed"
    w.spmc.script.borrow_mut().extend([wrong, err(FfaError::InvalidParameters)]);
    assert_eq!(w.p.announce(0, Availability::Destroyed, &w.spmc), (0, 2));
    // A BUSY context is asked again; an error status is no success.
    let mut busy_then_refused = resp;
    busy_then_refused[3] = 0xffff_fffe;
    w.spmc.script.borrow_mut().extend([err(FfaError::Busy), err(FfaError::Busy), busy_then_refused]);
    assert_eq!(w.p.announce(0, Availability::Created, &w.spmc), (0, 1));
    assert_eq!(w.spmc.seen_fids().iter().rev().take(3).filter(|&&f| f == fid::FFA_MSG_SEND_DIRECT_REQ_32).count(), 3);
    // One that never stops yielding: bounded.
    let mut y = [0; 18];
    y[0] = fid::FFA_YIELD as u64;
    y[1] = 0x8002 << 16;
    w.spmc.script.borrow_mut().extend(std::iter::repeat_n(y, 100));
    assert_eq!(w.p.announce(0, Availability::Created, &w.spmc), (0, 1));
}
