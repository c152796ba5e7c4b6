//! Senders whose requests are larger than a mock service reads: each gets a 413 in Azure's error envelope, and
//! `write.size` names the request, its size and the cap — while the mock holds no more than the cap.

use azrw::Check;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{CLAIMED_VERSION, Knobs, assert_violation, fetch_token, finding, send, stage};
use azrw::expect::Status;

const USER_ASSIGNED: &str = r#"
name: fake/oversize
agents: [prometheus@3.5]
auth:
  managed_identity: {client_id: 381a840f-f3c9-426b-9259-d868b14d9b38}
"#;

/// Posts `body` to the DCR with a valid token and the remote-write headers; the status and the answer's body.
async fn post(stage: &crate::common::Stage, token: &str, body: Vec<u8>) -> (u16, String) {
    let answer = stage
        .client
        .post(&stage.ingestion_url)
        .bearer_auth(token)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .expect("an answer, not a reset");
    (answer.status().as_u16(), answer.text().await.unwrap_or_default())
}

#[tokio::test]
async fn a_64_mib_write_gets_413_and_the_finding_names_it() {
    let stage = stage(USER_ASSIGNED).await;
    let token = fetch_token(&stage, &Knobs::default()).await.expect("token");
    let (status, body) = post(&stage, &token, vec![0u8; 64 << 20]).await;
    assert_eq!(status, 413, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("a JSON error body");
    assert_eq!(answer["error"]["code"], "RequestEntityTooLarge", "{body}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("1048576"), "{body}");
    assert_violation(
        &stage.evaluate(CLAIMED_VERSION),
        Check::WriteSize,
        &["request #2 POST https://", "→ 413", "Content-Length: 67108864", "read 0 bytes", "cap 1048576"],
    );
    // Nothing of it was kept.
    assert!(stage.cloud.recorder().body(2).unwrap_or_default().is_empty());
}

#[tokio::test]
async fn a_small_body_declaring_a_huge_uncompressed_size_gets_413_before_any_allocation() {
    let stage = stage(USER_ASSIGNED).await;
    let token = fetch_token(&stage, &Knobs::default()).await.expect("token");
    // A snappy header declaring 2,000,000,000 bytes, then one literal: the mock used to zero 2 GB for it.
    let mut body = vec![0x80, 0xa8, 0xd6, 0xb9, 0x07];
    body.extend([0x00, 0x00]);
    let (status, answer) = post(&stage, &token, body).await;
    assert_eq!(status, 413, "{answer}");
    assert_violation(
        &stage.evaluate(CLAIMED_VERSION),
        Check::WriteSize,
        &["uncompressed body", "declares 2000000000 uncompressed bytes", "Content-Length: 7", "cap 1048576"],
    );
}

#[tokio::test]
async fn a_chunked_body_over_the_cap_is_cut_off_while_reading() {
    let stage = stage(USER_ASSIGNED).await;
    // Plain HTTP through the proxy (absolute URI), chunked: no Content-Length to refuse it by.
    let url = stage.ingestion_url.replacen("https://", "http://", 1);
    let mut conn = tokio::net::TcpStream::connect(stage.cloud.proxy_addr()).await.unwrap();
    let host = url.split('/').nth(2).unwrap().to_owned();
    let head = format!(
        "POST {url} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-protobuf\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![0u8; 256 << 10];
    for _ in 0..8 {
        conn.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.unwrap();
        conn.write_all(&chunk).await.unwrap();
        conn.write_all(b"\r\n").await.unwrap();
    }
    conn.write_all(b"0\r\n\r\n").await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = conn.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_violation(
        &stage.evaluate(CLAIMED_VERSION),
        Check::WriteSize,
        &["request #1 POST http://", "Content-Length: none (chunked)", "2097152 received", "cap 1048576"],
    );
}

#[tokio::test]
async fn a_token_request_over_the_small_cap_gets_413() {
    let stage = stage(USER_ASSIGNED).await;
    let big = "x".repeat(100 << 10);
    let answer = stage
        .client
        .post("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=client_credentials&client_id=c&scope={big}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 413);
    assert_violation(
        &stage.evaluate(CLAIMED_VERSION),
        Check::WriteSize,
        &["login.microsoftonline.com accepts", "cap 65536"],
    );
}

#[tokio::test]
async fn writes_within_the_cap_pass_write_size() {
    let stage = stage(USER_ASSIGNED).await;
    send(&stage, &Knobs::default()).await;
    let eval = stage.evaluate(CLAIMED_VERSION);
    assert_eq!(finding(&eval, Check::WriteSize).status, Status::Pass);
}
