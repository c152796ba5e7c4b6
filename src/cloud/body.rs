//! Request bodies read under a cap, per service: the mock holds at most the cap of any body, however large the
//! sender says or makes it, and answers 413 for more.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use super::recorder::{Detail, Service};
use crate::remote_write::limits::MAX_REQUEST_BYTES;

/// Cap of the token services' and other small requests: a token form with a certificate assertion is a few KiB.
pub(crate) const MAX_SMALL_REQUEST_BYTES: usize = 64 << 10;

/// What is discarded, at most, after the cap tripped so the sender reads the 413 instead of a reset (then the
/// connection is closed): reading costs time, not memory.
const MAX_DISCARD_BYTES: u64 = 256 << 20;

/// The most of a request body `service` reads: remote-write's documented request size for the DCR, the case's
/// plain receivers and the query endpoint; a small hard cap for IMDS, Entra and anything unrouted.
pub(crate) fn limit(service: Service) -> usize {
    match service {
        Service::Dcr | Service::Receiver | Service::Query => MAX_REQUEST_BYTES,
        Service::Imds | Service::Entra | Service::Unrouted => MAX_SMALL_REQUEST_BYTES,
    }
}

/// Why a body was not read whole.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Larger than the cap: what the recorder keeps of it ([`Detail::Oversize`]), and whether the connection must
    /// close (the rest was not read).
    TooLarge(Box<Detail>, bool),
    /// The connection broke while reading.
    Broken(String),
}

/// Reads a body of at most `limit` bytes into one buffer (sized by `Content-Length` when it fits, so nothing is
/// copied twice). A `Content-Length` over the cap is refused before any byte is held.
pub(crate) async fn read<B>(mut body: B, content_length: Option<u64>, limit: usize) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let oversize = |read: u64| Detail::Oversize {
        what: "body".into(),
        limit: limit as u64,
        content_length,
        read,
        received: read,
        declared: None,
    };
    if content_length.is_some_and(|n| n > limit as u64) {
        return Err(discard(body, oversize(0), 0).await);
    }
    let mut buf = BytesMut::with_capacity(content_length.map_or(0, |n| n as usize));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
        let Ok(data) = frame.into_data() else { continue };
        if buf.len() + data.len() > limit {
            let held = buf.len() as u64;
            drop(buf);
            return Err(discard(body, oversize(held), held + data.len() as u64).await);
        }
        if buf.is_empty() && content_length == Some(data.len() as u64) {
            // The whole body in one frame: keep it as it came.
            return Ok(data);
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// Reads and drops the rest of an oversize body (up to [`MAX_DISCARD_BYTES`]), counting it into the evidence.
async fn discard<B>(mut body: B, mut detail: Detail, mut received: u64) -> BodyError
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut complete = true;
    loop {
        if received > MAX_DISCARD_BYTES {
            complete = false;
            break;
        }
        match body.frame().await {
            Some(Ok(frame)) => received += frame.data_ref().map_or(0, |d| d.len() as u64),
            Some(Err(_)) => {
                complete = false;
                break;
            }
            None => break,
        }
    }
    if let Detail::Oversize { received: r, .. } = &mut detail {
        *r = received;
    }
    BodyError::TooLarge(Box::new(detail), !complete)
}

/// The 413 answer to an oversize request: Azure's error envelope, naming the cap (`request_too_large` in the mock
/// data's `errors.json`), and `Connection: close` when the rest of the body was left unread.
pub(crate) fn too_large_reply(mocks: &super::MockData, detail: &Detail, close: bool) -> super::wire::Reply {
    let Detail::Oversize { what, limit, content_length, received, declared, .. } = detail else {
        return super::wire::Reply::text(413, "request too large\n");
    };
    let size = match (declared, content_length) {
        (Some(d), _) => format!("{d} bytes declared"),
        (None, Some(n)) => format!("Content-Length {n}"),
        (None, None) => format!("at least {received} bytes"),
    };
    let common = super::wire::error_vars();
    let (limit, size) = (limit.to_string(), size);
    let mut vars: Vec<(&str, &str)> = common.iter().map(|(k, v)| (*k, v.as_str())).collect();
    vars.extend([("what", what.as_str()), ("limit", limit.as_str()), ("size", size.as_str())]);
    let (status, body) = mocks.error("request_too_large", &vars);
    let mut reply = super::wire::Reply::json(status, body);
    if close {
        reply.headers.push(("connection".into(), "close".into()));
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};
    use std::convert::Infallible;

    type Frames = futures_util::stream::Iter<std::vec::IntoIter<Result<hyper::body::Frame<Bytes>, Infallible>>>;

    fn chunked(chunks: usize, size: usize) -> StreamBody<Frames> {
        let frames: Vec<_> = (0..chunks).map(|_| Ok(hyper::body::Frame::data(Bytes::from(vec![0u8; size])))).collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn within_the_cap_is_read_whole() {
        let body = read(chunked(4, 1000), None, 4000).await.unwrap();
        assert_eq!(body.len(), 4000);
        let body = read(Full::new(Bytes::from_static(b"abc")), Some(3), 3).await.unwrap();
        assert_eq!(&body[..], b"abc");
    }

    #[tokio::test]
    async fn over_the_cap_stops_holding_and_counts_the_rest() {
        let Err(BodyError::TooLarge(detail, close)) = read(chunked(10, 1000), None, 2500).await else {
            panic!("not refused")
        };
        let Detail::Oversize { read: held, received, limit, .. } = *detail else { panic!("{detail:?}") };
        assert_eq!((held, received, limit, close), (2000, 10_000, 2500, false));
    }

    #[tokio::test]
    async fn a_content_length_over_the_cap_is_refused_unread() {
        let Err(BodyError::TooLarge(detail, _)) = read(chunked(3, 1000), Some(3000), 2500).await else {
            panic!("not refused")
        };
        let Detail::Oversize { read: held, content_length, received, .. } = *detail else { panic!("{detail:?}") };
        assert_eq!((held, content_length, received), (0, Some(3000), 3000));
    }
}
