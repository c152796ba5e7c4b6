//! Decoding (placeholder).
use super::DecodedWrite;

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Decodes a snappy-block protobuf remote-write body.
pub fn decode(_body: &[u8], _content_type: Option<&str>) -> Result<DecodedWrite, DecodeError> {
    Err(DecodeError("not implemented".into()))
}
