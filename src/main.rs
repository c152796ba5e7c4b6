//! `azrw`: a thin shell over the library's [`azrw::cli`].

use clap::Parser;

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("AZRW_LOG"))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let code = azrw::cli::main(azrw::cli::Cli::parse()).await;
    std::process::exit(code);
}
