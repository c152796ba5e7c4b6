//! A bounded mutation fuzzer over every input a sender or a user controls: scenario files and fault profiles (never
//! a panic; every error has file:line:column), the RW 1.0/2.0 decoders and the borrowed view (never a panic,
//! nothing over the caps), and the proxy's request parsing (never a panic; the mock still answers afterwards).
//!
//! Seeds are the committed corpus under `tests/fuzz-corpus/<target>/` (a crash found becomes a file there, named
//! `regression-…`). cargo-fuzz needs nightly and a separate build; this runs in the normal test binary, with a
//! fixed seed so a failure reproduces: `AZRW_FUZZ_CASES` (default 300 per target) and `AZRW_FUZZ_SEED` choose how
//! many and which, and each target also stops after `AZRW_FUZZ_SECS` (default 60).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use azrw::remote_write::{self, limits};
use azrw::scenario::{self, ScenarioError};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let seeds: Vec<_> = files.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// One mutation of `input` (bytes flipped, set to edge values, inserted, deleted, duplicated, spliced with another
/// seed; for text also whole lines dropped, repeated or swapped).
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(9) {
            0 if len > 0 => out[rng.below(len)] ^= 1 << rng.below(8),
            1 if len > 0 => out[rng.below(len)] = [0x00, 0xff, 0x7f, 0x80, b':', b'-', b'\n', b'{'][rng.below(8)],
            2 => {
                let at = rng.below(len + 1);
                let bytes: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
                out.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                out.drain(at..end);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(64)).min(len);
                let copy = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
            5 => out.truncate(rng.below(len + 1)),
            6 if !other.is_empty() => {
                let at = rng.below(len + 1);
                let from = rng.below(other.len());
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
            7 | 8 => {
                let mut lines: Vec<Vec<u8>> = out.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
                let n = lines.len();
                let (a, b) = (rng.below(n), rng.below(n));
                match rng.below(3) {
                    0 => drop(lines.remove(a)),
                    1 => lines.insert(a, lines[b].clone()),
                    _ => lines.swap(a, b),
                }
                out = lines.join(&b'\n');
            }
            _ => {}
        }
    }
    out
}

/// Runs `check` on every seed and on `AZRW_FUZZ_CASES` mutations of them (bounded by `AZRW_FUZZ_SECS`); a panic is
/// reported with the input that caused it, as an escaped string to paste into a regression file.
fn fuzz(target: &str, check: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let cases: usize = env_or("AZRW_FUZZ_CASES", 300);
    let budget = Duration::from_secs(env_or("AZRW_FUZZ_SECS", 60));
    let mut rng = Rng(env_or("AZRW_FUZZ_SEED", 0x5eed_a2f0_0d15_ea5e_u64) | 1);
    let seeds = corpus(target);
    let started = Instant::now();
    let inputs = seeds.iter().map(|(_, s)| s.clone()).chain((0..cases).map(|_| {
        let (_, seed) = &seeds[rng.below(seeds.len())];
        let (_, other) = &seeds[rng.below(seeds.len())];
        mutate(&mut rng, seed, other)
    }));
    for (i, input) in inputs.enumerate() {
        if started.elapsed() > budget {
            eprintln!("fuzz {target}: time budget spent after {i} inputs");
            break;
        }
        if catch_unwind(AssertUnwindSafe(|| check(&input))).is_err() {
            panic!("fuzz {target}: input {i} panicked: {:?}", String::from_utf8_lossy(&input));
        }
    }
}

/// Every error of a refused file points into it.
fn assert_located(err: &ScenarioError, text: &str) {
    for e in err.errors() {
        assert!(
            matches!(e, ScenarioError::Invalid { position: Some(_), .. }),
            "an error without file:line:column: {e}\nfor input:\n{text}"
        );
    }
}

#[test]
fn scenario_loading_never_panics_and_locates_every_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus/scenario");
    fuzz("scenario", |input| {
        let text = String::from_utf8_lossy(input).into_owned();
        if let Err(err) = scenario::parse(&dir.join("fuzzed.yaml"), text.clone()) {
            assert_located(&err, &text);
        }
    });
}

#[test]
fn fault_profiles_never_panic_and_locate_every_error() {
    fuzz("faults", |input| {
        let text = String::from_utf8_lossy(input);
        if let Err(err) = scenario::parse_fault_profile(Path::new("fuzzed.yaml"), &text) {
            assert_located(&err, &text);
        }
    });
}

/// Decoding a body: never a panic, never more than the uncompressed cap held.
fn decode_all(body: &[u8]) {
    for ct in ["application/x-protobuf", "application/x-protobuf;proto=io.prometheus.write.v2.Request"] {
        if let Ok(w) = remote_write::decode(body, Some(ct)) {
            assert!(w.uncompressed_len <= limits::MAX_UNCOMPRESSED_BYTES);
        }
    }
    remote_write::with_view(body, |view| {
        if let Ok(v) = view {
            let _ = v.series().map(|s| s.labels.len()).sum::<usize>();
            assert_eq!(v.to_owned().series.len(), v.series().count());
        }
    });
}

#[test]
fn rw1_decoder_and_view_never_panic() {
    // Mutated both on the wire and inside the compression (so the protobuf parser sees more than snappy errors).
    fuzz("rw1", |input| {
        decode_all(input);
        if let Ok(raw) = snap::raw::Decoder::new().decompress_vec(input) {
            decode_all(
                &snap::raw::Encoder::new().compress_vec(&mutate(&mut Rng(raw.len() as u64 | 1), &raw, &[])).unwrap(),
            );
        }
    });
}

#[test]
fn rw2_decoder_never_panics() {
    fuzz("rw2", |input| {
        decode_all(input);
        if let Ok(raw) = snap::raw::Decoder::new().decompress_vec(input) {
            decode_all(
                &snap::raw::Encoder::new().compress_vec(&mutate(&mut Rng(raw.len() as u64 | 7), &raw, &[])).unwrap(),
            );
        }
    });
}

#[test]
fn the_proxy_survives_every_mutated_request() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stage = rt.block_on(crate::common::stage(
        "name: fuzz/proxy\nagents: [prometheus@3.5]\nauth:\n  managed_identity: {client_id: \"\"}\n",
    ));
    let addr = stage.cloud.proxy_addr();
    fuzz("http", |input| {
        rt.block_on(async {
            let mut conn = tokio::net::TcpStream::connect(addr).await.expect("the proxy still accepts");
            let _ = conn.write_all(input).await;
            // End of input: whatever the request promised, the proxy sees no more and must answer or close.
            let _ = conn.shutdown().await;
            let mut answer = Vec::new();
            let _ = conn.read_to_end(&mut answer).await;
        })
    });
    // And it still serves a well-formed request.
    let status = rt.block_on(async {
        let (_, token) = corpus("http").into_iter().find(|(p, _)| p.ends_with("imds-token.txt")).unwrap();
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(&token).await.unwrap();
        let mut head = [0u8; 12];
        conn.read_exact(&mut head).await.unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    assert_eq!(status, "HTTP/1.1 200", "after fuzzing, the IMDS mock answers a good request");
}
