//! Resident memory of `azrw mock` under oversized and maximum-size writes (printed, never asserted):
//! `cargo bench --bench rss`. Starts the release `azrw mock` on 127.0.0.1:0 and talks to it only through its own
//! proxy (loopback; the token service and the DCR are the mock's), then reads `VmRSS`/`VmHWM` from /proc.
//!
//! - one 64 MiB write (zeros, valid bearer): refused 413 while reading;
//! - 1,000 maximum-size writes: valid RW 1.0 bodies just under the 1 MiB uncompressed cap, of small series (the
//!   costliest shape to decode and keep), accepted and recorded in full mode.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use azrw::remote_write::limits::MAX_UNCOMPRESSED_BYTES;
use azrw::remote_write::{DecodedWrite, RwVersion, Sample, Series, encode};

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // `cargo test --all-targets` runs benches without --bench: print how to run and stop.
    if !std::env::args().any(|a| a == "--bench") {
        println!("rss: run with `cargo bench --bench rss`");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(measure());
}

struct Mock {
    child: Child,
    proxy: String,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Mock {
    fn start() -> Mock {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_azrw"))
            .args(["mock", "--listen", "127.0.0.1:0", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            // Its warnings (the recorder's budget) and any crash show with the figures.
            .stderr(Stdio::inherit())
            .spawn()
            .expect("azrw mock");
        let stdout = child.stdout.take().expect("stdout");
        let mut proxy = String::new();
        let mut lines = std::io::BufReader::new(stdout).lines();
        // Up to its last line (it is then waiting); the rest is read on, so its output never meets a closed pipe.
        for line in lines.by_ref() {
            let line = line.expect("a line");
            if let Some(p) = line.strip_prefix("mock Azure cloud (IMDS, Entra, DCR, workspace query) on ") {
                proxy = p.to_owned();
            }
            if line.starts_with("Ctrl-C or SIGTERM stops it") {
                break;
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        let text = std::fs::read_to_string(dir.path().join("env")).expect("env file");
        let env = text
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
            .collect();
        Mock { child, proxy, env, _dir: dir }
    }

    fn var(&self, name: &str) -> &str {
        self.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).expect(name)
    }

    /// `(VmRSS, VmHWM)` in MiB.
    fn rss(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        let kib = |key: &str| -> f64 {
            let line = status.lines().find(|l| l.starts_with(key)).expect(key);
            line.split_whitespace().nth(1).and_then(|n| n.parse::<f64>().ok()).expect("kB") / 1024.0
        };
        (kib("VmRSS:"), kib("VmHWM:"))
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        // SAFETY: signalling the child this process started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

async fn measure() {
    let mock = Mock::start();
    let ca = std::fs::read(mock.var("SSL_CERT_FILE")).expect("ca");
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(&mock.proxy).expect("proxy"))
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("ca")])
        .build()
        .expect("client");
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope=https%3A%2F%2Fmonitor.azure.com%2F%2F.default",
        mock.var("AZRW_CLIENT_ID"),
        mock.var("AZRW_CLIENT_SECRET")
    );
    let token: serde_json::Value = client
        .post(format!("https://login.microsoftonline.com/{}/oauth2/v2.0/token", mock.var("AZRW_TENANT_ID")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let token = token["access_token"].as_str().expect("access_token").to_owned();
    let url = mock.var("AZRW_INGESTION_URL").to_owned();
    let post = |body: Vec<u8>| {
        client
            .post(&url)
            .bearer_auth(&token)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body)
            .send()
    };
    println!("# azrw mock resident memory — {}", load());
    let (rss, _) = mock.rss();
    println!("started: VmRSS {rss:.1} MiB");

    let status = post(vec![0u8; 64 << 20]).await.map(|r| r.status().as_u16()).unwrap_or(0);
    let (rss, hwm) = mock.rss();
    println!("one 64 MiB write → {status}: VmRSS {rss:.1} MiB, peak (VmHWM) {hwm:.1} MiB");

    let body = largest_write();
    println!("maximum-size write: {} bytes on the wire, just under {MAX_UNCOMPRESSED_BYTES} uncompressed", body.len());
    let started = Instant::now();
    let mut accepted = 0;
    for _ in 0..1000 {
        if post(body.clone()).await.is_ok_and(|r| r.status().is_success()) {
            accepted += 1;
        }
    }
    let (rss, hwm) = mock.rss();
    println!(
        "1,000 maximum-size writes ({accepted} accepted, {:.1} s): VmRSS {rss:.1} MiB, peak (VmHWM) {hwm:.1} MiB",
        started.elapsed().as_secs_f64()
    );
}

/// A valid RW 1.0 write of small series whose uncompressed size is just under the cap.
fn largest_write() -> Vec<u8> {
    let series = |i: usize| Series {
        labels: vec![("__name__".into(), "azrw_load_series".into()), ("series".into(), i.to_string())],
        samples: vec![Sample { timestamp: 1_764_000_000_000, value: i as f64 }],
        histograms: vec![],
        exemplars: vec![],
    };
    let mut write = DecodedWrite { version: Some(RwVersion::V1), ..Default::default() };
    // Each series is ~50 bytes of protobuf; grow to the cap and take the last size that fits.
    let mut n = MAX_UNCOMPRESSED_BYTES / 64;
    loop {
        write.series = (0..n).map(series).collect();
        let body = encode(&write, RwVersion::V1);
        let raw = snap::raw::decompress_len(&body).expect("snappy");
        if raw > MAX_UNCOMPRESSED_BYTES {
            // Back down one series at a time to the largest that fits.
            loop {
                write.series.pop();
                let body = encode(&write, RwVersion::V1);
                if snap::raw::decompress_len(&body).expect("snappy") <= MAX_UNCOMPRESSED_BYTES {
                    return body;
                }
            }
        }
        n += 500;
    }
}

fn load() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!("load average {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}
