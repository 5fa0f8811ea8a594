//! SIP messages: framing, parsing, typed headers and ids, building and encoding.
//!
//! Bytes from the transport are framed by Content-Length ([`framing`]), normalised so that
//! folded lines and compact header names read like any others ([`normalize`]), and then
//! split into header fields that point into one copy of the received header section.
//! Start lines, URIs and the headers the engine relies on are parsed by this module's own
//! parsers ([`uri`], [`headers`]) because `rsip` 0.4 gets them wrong on real traffic.
//! Headers the engine does not change are written back byte for byte as they arrived.
//! The tests check these parsers against `rsip`, which the engine itself no longer uses.

pub mod digest;
mod fields;
pub mod framing;
pub mod headers;
mod ids;
mod message;
mod method;
pub mod normalize;
mod status;
pub mod uri;

pub use ids::{BRANCH_COOKIE, Branch, CallId, Tag};
pub use message::{
    HeaderError, Headers, Message, ParseError, Request, Response, parse, with_tag_param,
};
pub use method::{InvalidMethod, Method};
pub use status::{reason_phrase, reply_to_raw};
