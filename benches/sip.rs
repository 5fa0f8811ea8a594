//! SIP message costs on the per-message path: framing, normalisation and parsing of a
//! realistic INVITE and 200 OK, the typed Via read, and encoding back to bytes.

use criterion::{Criterion, criterion_group, criterion_main};
use hotline_b2bua::sip::{self, Headers, Message};
use std::hint::black_box;

const INVITE: &[u8] = include_bytes!("../src/sip/corpus/invite_sdp.sip");
const OK: &[u8] = include_bytes!("../src/sip/corpus/response_200_invite.sip");

fn parse_encode(c: &mut Criterion) {
    c.bench_function("parse invite", |b| {
        b.iter(|| sip::parse(black_box(INVITE), true).map(drop))
    });
    c.bench_function("parse 200", |b| {
        b.iter(|| sip::parse(black_box(OK), true).map(drop))
    });
    c.bench_function("parse invite, read via, encode", |b| {
        b.iter(|| {
            let Ok(Message::Request(request)) = sip::parse(black_box(INVITE), true) else {
                return 0;
            };
            let branch_len = request
                .top_via()
                .map(|via| via.branch().map_or(0, str::len));
            request.encode().len() + branch_len.unwrap_or(0)
        })
    });
}

criterion_group!(benches, parse_encode);
criterion_main!(benches);
