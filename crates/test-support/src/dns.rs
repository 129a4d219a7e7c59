//! A small DNS server for tests: answers A queries for the names it is given (TTL 1 s),
//! NXDOMAIN for every other name. Enough for nginx's resolver, so the gateway's
//! DNS-resolved upstreams (the compose and Kubernetes setup) can be tested on loopback
//! with replicas on 127.0.0.2, 127.0.0.3, … appearing and disappearing.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

type Records = Arc<Mutex<HashMap<String, Vec<Ipv4Addr>>>>;

pub struct DnsServer {
    pub addr: SocketAddr,
    records: Records,
}

impl DnsServer {
    pub fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind DNS socket");
        let addr = socket.local_addr().expect("DNS address");
        let records: Records = Arc::default();
        let served = records.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, peer)) = socket.recv_from(&mut buf) {
                if let Some(answer) = answer(&buf[..n], &served) {
                    let _ = socket.send_to(&answer, peer);
                }
            }
        });
        Self { addr, records }
    }

    /// From now on `name` resolves to `addresses` (an empty list removes it).
    pub fn set(&self, name: &str, addresses: &[Ipv4Addr]) {
        self.records
            .lock()
            .unwrap()
            .insert(name.to_ascii_lowercase(), addresses.to_vec());
    }
}

/// The reply to one query, or `None` for what is not a standard query.
fn answer(query: &[u8], records: &Records) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    // The question: labels up to the zero byte, then type and class.
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question = &query[12..at + 4];
    let name = labels.join(".");
    let found = records.lock().unwrap().get(&name).cloned();
    let addresses = match (&found, qtype) {
        (Some(addrs), 1) => addrs.clone(),
        _ => Vec::new(),
    };
    let known = found.is_some_and(|a| !a.is_empty());

    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&query[0..2]); // id
    out.push(0x84 | (query[2] & 0x01)); // response, authoritative, RD copied
    out.push(if known { 0x00 } else { 0x03 }); // NOERROR or NXDOMAIN
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    for addr in addresses {
        out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]); // name pointer, A, IN
        out.extend_from_slice(&1u32.to_be_bytes()); // TTL
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&addr.octets());
    }
    Some(out)
}
