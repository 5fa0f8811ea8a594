//! TODO
pub mod framing;
pub mod headers;
pub mod normalize;
pub mod uri;
