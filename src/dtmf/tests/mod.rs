//! Tests of the DTMF module: the RFC 4733 detector on synthetic sequences and on the SIPp
//! captures, the key collector, and the INFO bodies.

mod captures;
mod collector;
mod info;
mod rfc4733;

use super::{event_for_key, key_for_event};

#[test]
fn event_codes_map_to_keys() {
    let keys = "0123456789*#ABCD";
    for (event, key) in (0u8..).zip(keys.chars()) {
        assert_eq!(key_for_event(event), Some(key), "event {event}");
        assert_eq!(event_for_key(key), Some(event), "key {key}");
    }
    assert_eq!(key_for_event(16), None);
    assert_eq!(key_for_event(255), None);
    assert_eq!(event_for_key('a'), Some(12));
    assert_eq!(event_for_key('E'), None);
    assert_eq!(event_for_key('五'), None);
}
