//! The process runtime's isolation: an agent's network namespace has nothing but loopback.

use std::process::Stdio;

use azrw::runtime::netns::IsolatedNetwork;

#[tokio::test]
async fn namespace_has_only_loopback_and_no_route_out() {
    let ns = IsolatedNetwork::create().expect("create namespace (run the tests as root)");

    // Interfaces as the kernel lists them for a process inside the namespace.
    let mut cmd = tokio::process::Command::new("cat");
    cmd.arg("/proc/net/dev").stdout(Stdio::piped());
    let out = ns.spawn(cmd).await.unwrap().wait_with_output().await.unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let interfaces: Vec<&str> = text.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert_eq!(interfaces, vec!["lo"], "interfaces inside the namespace: {text}");

    // IMDS and a public address are unreachable: the connect fails at once, no packet is sent.
    for target in ["169.254.169.254:80", "20.190.160.1:443"] {
        let addr: std::net::SocketAddr = target.parse().unwrap();
        let err = ns.run(move || std::net::TcpStream::connect(addr)).await.unwrap().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENETUNREACH), "{target}: {err}");
    }

    // Loopback works: a listener bound in the namespace is reachable from inside it.
    let listener = ns.bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    ns.run(move || std::net::TcpStream::connect(addr)).await.unwrap().expect("loopback connect");
    drop(listener);
}
