//! The descriptor parser against well-formed v1.0/v1.1/v1.2 descriptors and
//! hostile sizes, offsets and counts.

use super::*;

use super::testing::*;

const RW: u8 = 0b0110; // data RW, instruction NX

#[test]
fn v1_1_and_v1_2_descriptors_parse() {
    let b = build(0, 0x2f, 0, &[(0x8001, RW), (0x8002, 0b0101)], 16, &[(0x6000_0000, 2), (0x6010_0000, 1)]);
    let d = parse(&b, V1_1, true).unwrap();
    assert_eq!((d.sender, d.receiver_count, d.total_page_count, d.address_range_count), (0, 2, 3, 2));
    let r: Vec<_> = d.receivers().map(|r| (r.receiver, r.permissions.data)).collect();
    assert_eq!(r, [(0x8001, DataAccess::ReadWrite), (0x8002, DataAccess::ReadOnly)]);
    let list: Vec<_> = constituents(&b[d.constituent_offset(0).unwrap()..]).unwrap().collect();
    assert_eq!(list, [Constituent { address: 0x6000_0000, page_count: 2 }, Constituent { address: 0x6010_0000, page_count: 1 }]);
    // v1.2: 32-byte EMADs carry an implementation defined field.
    let mut b = build(0, 0x2f, 0, &[(0x8001, RW)], 32, &[(0x6000_0000, 1)]);
    b[HEADER_V1_1 + 16] = 0xab;
    let d = parse(&b, V1_2, true).unwrap();
    assert_eq!(d.receivers().next().unwrap().impdef, [0xab, 0]);
    assert_eq!(parse(&b, V1_1, true), Err(DescError::Invalid), "32-byte EMADs are v1.2's");
}

#[test]
fn v1_0_layout() {
    // 32-byte header, EMADs at 32, u8 attributes.
    let mut b = vec![0u8; 32 + 16 + 16 + 16];
    b[2] = 0x2f;
    b[28] = 1;
    b[32..34].copy_from_slice(&0x8001u16.to_le_bytes());
    b[34] = RW;
    b[36] = 48;
    b[48] = 1; // total pages
    b[52] = 1; // ranges
    b[64..72].copy_from_slice(&0x6000_0000u64.to_le_bytes());
    b[72] = 1;
    let d = parse(&b, V1_0, true).unwrap();
    assert!(d.v1_0);
    assert_eq!((d.attributes.0, d.composite_offset, d.total_page_count), (0x2f, 48, 1));
    b[3] = 1;
    assert_eq!(parse(&b, V1_0, true), Err(DescError::Invalid), "reserved byte");
}

#[test]
fn hostile_descriptors_are_refused_never_panicking() {
    let good = build(0, 0x2f, 0, &[(0x8001, RW)], 16, &[(0x6000_0000, 1)]);
    let set32 = |b: &mut Vec<u8>, o: usize, v: u32| b[o..o + 4].copy_from_slice(&v.to_le_bytes());
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("truncated header", Box::new(|b: &mut Vec<u8>| b.truncate(20))),
        ("no receivers", Box::new(move |b: &mut Vec<u8>| set32(b, 28, 0))),
        ("huge receiver count", Box::new(move |b: &mut Vec<u8>| set32(b, 28, u32::MAX))),
        ("EMAD size 0", Box::new(move |b: &mut Vec<u8>| set32(b, 24, 0))),
        ("EMAD size 17", Box::new(move |b: &mut Vec<u8>| set32(b, 24, 17))),
        ("EMAD offset past the end", Box::new(move |b: &mut Vec<u8>| set32(b, 32, 0xffff_fff0))),
        ("EMAD offset inside the header", Box::new(move |b: &mut Vec<u8>| set32(b, 32, 16))),
        ("EMAD offset unaligned", Box::new(move |b: &mut Vec<u8>| set32(b, 32, 56))),
        ("reserved header bytes", Box::new(|b: &mut Vec<u8>| b[40] = 1)),
        ("composite offset past the end", Box::new(move |b: &mut Vec<u8>| set32(b, HEADER_V1_1 + 4, 0xffff_ff00))),
        ("composite offset overlapping the EMADs", Box::new(move |b: &mut Vec<u8>| set32(b, HEADER_V1_1 + 4, HEADER_V1_1 as u32))),
        ("composite offset unaligned", Box::new(move |b: &mut Vec<u8>| set32(b, HEADER_V1_1 + 4, 66))),
        ("reserved permission encoding", Box::new(|b: &mut Vec<u8>| b[HEADER_V1_1 + 2] = 0b11)),
        ("EMAD reserved field", Box::new(|b: &mut Vec<u8>| b[HEADER_V1_1 + 9] = 1)),
        ("zero total pages", Box::new(move |b: &mut Vec<u8>| set32(b, 64, 0))),
        ("zero ranges", Box::new(move |b: &mut Vec<u8>| set32(b, 68, 0))),
    ];
    for (what, f) in cases {
        let mut b = good.clone();
        f(&mut b);
        assert!(parse(&b, V1_1, true).is_err(), "{what}");
    }
    // Every truncation of a good descriptor is refused, none panics.
    for n in 0..good.len() - CONSTITUENT_SIZE {
        let _ = parse(&good[..n], V1_1, true);
    }
    for n in 0..64 {
        let _ = parse(&good[..good.len().min(n)], V1_0, true);
    }
}

#[test]
fn a_receiver_twice_and_too_many_receivers() {
    let b = build(0, 0x2f, 0, &[(0x8001, RW), (0x8001, RW)], 16, &[(0x6000_0000, 1)]);
    assert_eq!(parse(&b, V1_1, true), Err(DescError::Invalid));
    let b = build(0, 0x2f, 0, &[(1, RW), (2, RW), (3, RW), (4, RW), (5, RW)], 16, &[(0x6000_0000, 1)]);
    assert_eq!(parse(&b, V1_1, true), Err(DescError::TooManyReceivers));
    // Receivers that describe different regions.
    let mut b = build(0, 0x2f, 0, &[(0x8001, RW), (0x8002, RW)], 16, &[(0x6000_0000, 1)]);
    b[HEADER_V1_1 + 16 + 4] += 16;
    assert_eq!(parse(&b, V1_1, true), Err(DescError::Invalid));
}

#[test]
fn hostile_constituents() {
    let one = |a: u64, p: u32, r: u32| {
        let mut c = vec![0u8; 16];
        c[0..8].copy_from_slice(&a.to_le_bytes());
        c[8..12].copy_from_slice(&p.to_le_bytes());
        c[12..16].copy_from_slice(&r.to_le_bytes());
        c
    };
    assert!(constituents(&one(0x1000, 1, 0)).is_ok());
    assert!(constituents(&one(0x1001, 1, 0)).is_err(), "unaligned");
    assert!(constituents(&one(0x1000, 0, 0)).is_err(), "no pages");
    assert!(constituents(&one(!0xfff, 2, 0)).is_err(), "wraps");
    assert!(constituents(&one(0x1000, 1, 1)).is_err(), "reserved");
    assert!(constituents(&[0u8; 15]).is_err(), "partial");
    let a = Constituent { address: 0x1000, page_count: 2 };
    assert!(a.overlaps(&Constituent { address: 0x2000, page_count: 1 }));
    assert!(!a.overlaps(&Constituent { address: 0x3000, page_count: 1 }));
}

#[test]
fn response_header_round_trips_through_the_parser() {
    let rcv = EndpointMemAccess { receiver: 0x8001, permissions: MemAccessPermissions::from_byte(RW).unwrap(), flags: 0, impdef: [7, 8] };
    for v in [V1_0, V1_1, V1_2] {
        let mut out = [0u8; 256];
        let n = write_response_header(&mut out, v, 0, MemRegionAttributes(0x6f), 1 << 3, 0x8000_0000_0000_0001, 9, core::slice::from_ref(&rcv), 3, 2).unwrap();
        let d = parse(&out[..n], v, true).unwrap();
        assert_eq!((d.handle, d.tag, d.flags, d.total_page_count, d.address_range_count), (0x8000_0000_0000_0001, 9, 8, 3, 2));
        assert_eq!(d.constituent_offset(0), Some(n));
        assert_eq!(d.receivers().next().unwrap().impdef, if v == V1_2 { [7, 8] } else { [0, 0] });
    }
    assert!(write_response_header(&mut [0u8; 40], V1_1, 0, MemRegionAttributes(0), 0, 0, 0, core::slice::from_ref(&rcv), 1, 1).is_none(), "too small");
}

#[test]
fn relinquish_descriptor() {
    let mut b = [0u8; 32];
    b[0..8].copy_from_slice(&5u64.to_le_bytes());
    b[12] = 1;
    b[16..18].copy_from_slice(&0x8001u16.to_le_bytes());
    assert_eq!(parse_relinquish(&b), Ok(RelinquishDescriptor { handle: 5, flags: 0, endpoint: 0x8001 }));
    b[12] = 2;
    assert!(parse_relinquish(&b).is_err());
    assert!(parse_relinquish(&b[..10]).is_err());
}

/// Property tests (proptest, shrinking to the smallest failing input): the
/// parser is total on any bytes and any version, and what it accepts is
/// inside the buffer it was given.
mod props {
    use super::*;
    use proptest::prelude::*;

    fn version() -> impl Strategy<Value = u32> {
        prop_oneof![Just(0x1_0000u32), Just(0x1_0001), Just(0x1_0002), any::<u32>()]
    }

    fn accepted_is_inside(buf: &[u8], d: &TransactionDescriptor) -> Result<(), TestCaseError> {
        prop_assert!((1..=MAX_RECEIVERS).contains(&d.receiver_count));
        prop_assert_eq!(d.receivers().count(), d.receiver_count);
        if d.composite_offset != 0 {
            prop_assert!(d.composite_offset + COMPOSITE_SIZE <= buf.len());
            prop_assert!(d.address_range_count >= 1 && d.total_page_count >= 1);
            let first = d.constituent_offset(0);
            prop_assert_eq!(first, Some(d.composite_offset + COMPOSITE_SIZE));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes_any_version(buf in proptest::collection::vec(any::<u8>(), 0..400), v in version(), need in any::<bool>()) {
            if let Ok(d) = parse(&buf, v, need) {
                accepted_is_inside(&buf, &d)?;
            }
            let _ = parse_relinquish(&buf);
            let _ = constituents(&buf).map(|i| i.count());
        }

        /// A valid descriptor with a few bytes changed: still never a panic,
        /// and what is accepted is still inside.
        #[test]
        fn mutated_valid_descriptors(
            receivers in proptest::collection::vec((0x8001u16..0x8006, 0u8..16), 1..5),
            emad in prop_oneof![Just(16usize), Just(32)],
            ranges in proptest::collection::vec((any::<u64>(), 1u32..8), 1..6),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            cut in any::<usize>(),
        ) {
            let mut b = build(0, 0x2f, 0, &receivers, emad, &ranges);
            for (at, v) in edits {
                let n = b.len();
                b[at % n] = v;
            }
            let len = b.len() - cut % (b.len() / 2 + 1);
            let b = &b[..len];
            if let Ok(d) = parse(b, 0x1_0002, true) {
                accepted_is_inside(b, &d)?;
            }
        }
    }
}
