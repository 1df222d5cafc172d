//! The L2 switch between the VMs' virtio-net devices and the uplink: a
//! learning bridge as IEEE 802.1D §7.7/§7.8 describes one, reduced to what
//! a handful of ports needs.  It learns which port a source MAC address sits
//! behind, forwards a unicast frame to that port only, and floods broadcast,
//! multicast and unknown destinations to every other port.
//!
//! Plain logic, host-tested; `crate::guest::net` moves the frames.

/// A set of ports, bit n for port n.
pub type Ports = u32;

/// A MAC address.
pub type Mac = [u8; 6];

/// How many addresses the switch remembers.  Past that the least recently
/// seen is forgotten: its frames are flooded until it is learned again.
pub const TABLE_SIZE: usize = 64;

/// The shortest frame the switch forwards: destination, source, EtherType.
pub const ETH_HEADER: usize = 14;

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    mac: Mac,
    port: u8,
    /// When it was last seen (the switch's frame counter); 0: free.
    seen: u64,
}

#[derive(Debug)]
pub struct Switch {
    table: [Entry; TABLE_SIZE],
    clock: u64,
}

impl Default for Switch {
    fn default() -> Self {
        Self::new()
    }
}

fn group(mac: &Mac) -> bool {
    mac[0] & 1 != 0 // I/G bit: broadcast and multicast
}

impl Switch {
    pub const fn new() -> Self {
        Self { table: [Entry { mac: [0; 6], port: 0, seen: 0 }; TABLE_SIZE], clock: 0 }
    }

    /// Where a frame that came in on port `from` goes, out of the ports in
    /// `up` (those with a device ready to take frames).  Learns its source.
    /// Never includes `from`; empty for a runt or a frame that stays on its own port.
    pub fn forward(&mut self, from: usize, frame: &[u8], up: Ports) -> Ports {
        if frame.len() < ETH_HEADER || from >= Ports::BITS as usize {
            return 0;
        }
        let dst: Mac = frame[0..6].try_into().unwrap();
        let src: Mac = frame[6..12].try_into().unwrap();
        self.learn(src, from);
        let others = up & !(1 << from);
        if group(&dst) {
            return others;
        }
        match self.table.iter().find(|e| e.seen != 0 && e.mac == dst) {
            Some(e) => others & (1 << e.port),
            None => others,
        }
    }

    fn learn(&mut self, src: Mac, port: usize) {
        // A group address as a source is malformed (802.1D §7.8): never learned.
        if group(&src) {
            return;
        }
        self.clock += 1;
        let now = self.clock;
        if let Some(e) = self.table.iter_mut().find(|e| e.seen != 0 && e.mac == src) {
            // A station that moved (a VM restarted, the same MAC elsewhere) follows.
            e.port = port as u8;
            e.seen = now;
            return;
        }
        let slot = self.table.iter_mut().min_by_key(|e| e.seen).unwrap();
        *slot = Entry { mac: src, port: port as u8, seen: now };
    }

    /// Port `port` went away (its VM powered off or reset): forget what was
    /// learned behind it, so nothing is sent there until it speaks again.
    pub fn forget(&mut self, port: usize) {
        for e in self.table.iter_mut().filter(|e| e.port as usize == port) {
            e.seen = 0;
        }
    }

    /// The port `mac` was learned on.
    #[cfg(test)]
    pub fn port_of(&self, mac: &Mac) -> Option<usize> {
        self.table.iter().find(|e| e.seen != 0 && &e.mac == mac).map(|e| e.port as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BCAST: Mac = [0xff; 6];

    fn frame(dst: Mac, src: Mac) -> [u8; 60] {
        let mut f = [0u8; 60];
        f[0..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f
    }

    fn mac(n: u8) -> Mac {
        [0x52, 0x54, 0, 0x51, 0, n]
    }

    #[test]
    fn floods_broadcast_and_unknown_then_learns() {
        let mut s = Switch::new();
        let up = 0b111;
        // ARP request from port 0: to every other port.
        assert_eq!(s.forward(0, &frame(BCAST, mac(0)), up), 0b110);
        // Unknown unicast from port 1: flooded too; port 1's address is learned.
        assert_eq!(s.forward(1, &frame(mac(9), mac(1)), up), 0b101);
        // Known now: only the port behind each address.
        assert_eq!(s.forward(1, &frame(mac(0), mac(1)), up), 0b001);
        assert_eq!(s.forward(0, &frame(mac(1), mac(0)), up), 0b010);
        // Multicast (IPv6 neighbour discovery) floods.
        assert_eq!(s.forward(2, &frame([0x33, 0x33, 0, 0, 0, 1], mac(2)), up), 0b011);
    }

    #[test]
    fn never_back_out_of_the_port_and_only_to_ports_up() {
        let mut s = Switch::new();
        s.forward(0, &frame(BCAST, mac(0)), 0b11);
        // A frame for a station on its own port stays there.
        assert_eq!(s.forward(0, &frame(mac(0), mac(5)), 0b11), 0);
        // A port that is down gets nothing, known or not.
        assert_eq!(s.forward(1, &frame(mac(0), mac(1)), 0b10), 0);
        assert_eq!(s.forward(1, &frame(BCAST, mac(1)), 0b10), 0);
    }

    #[test]
    fn bad_frames_are_dropped_and_not_learned() {
        let mut s = Switch::new();
        assert_eq!(s.forward(0, &[0u8; 13], 0b11), 0);
        assert_eq!(s.forward(40, &frame(BCAST, mac(0)), 0b11), 0);
        // A group source address is not learned (it is still forwarded as a frame).
        s.forward(0, &frame(BCAST, BCAST), 0b11);
        assert_eq!(s.port_of(&BCAST), None);
    }

    #[test]
    fn a_station_that_moves_follows_and_forget_drops_a_port() {
        let mut s = Switch::new();
        s.forward(0, &frame(BCAST, mac(7)), 0b111);
        assert_eq!(s.port_of(&mac(7)), Some(0));
        s.forward(2, &frame(BCAST, mac(7)), 0b111);
        assert_eq!(s.port_of(&mac(7)), Some(2));
        s.forget(2);
        assert_eq!(s.port_of(&mac(7)), None);
        // Unknown again: flooded.
        assert_eq!(s.forward(1, &frame(mac(7), mac(1)), 0b111), 0b101);
    }

    #[test]
    fn a_full_table_forgets_the_least_recently_seen() {
        let mut s = Switch::new();
        for n in 0..TABLE_SIZE as u8 {
            s.forward(1, &frame(BCAST, [2, 0, 0, 0, 0, n]), 0b11);
        }
        // Station 0 speaks again, so station 1 is now the oldest.
        s.forward(1, &frame(BCAST, [2, 0, 0, 0, 0, 0]), 0b11);
        s.forward(0, &frame(BCAST, [2, 0, 0, 0, 1, 0]), 0b11);
        assert_eq!(s.port_of(&[2, 0, 0, 0, 0, 1]), None);
        assert_eq!(s.port_of(&[2, 0, 0, 0, 0, 0]), Some(1));
        assert_eq!(s.port_of(&[2, 0, 0, 0, 1, 0]), Some(0));
    }
}
