//! Host firewall rules for a case network: an agent container may reach its own mock cloud and nothing else.
//!
//! An internal Docker network has no route out, but the host itself answers on every one of its addresses
//! (docker0's, its other interfaces', other cases' gateways) because traffic to a local address goes through the
//! INPUT chain, whose policy is usually ACCEPT. So each case network gets rules in INPUT, all matching `-i` its
//! bridge and tagged `azrw:<run>:<case>`:
//!
//! * accept TCP to the gateway address on each mock listener's port (added as each listener is bound),
//! * accept established/related (replies to the harness's own connections into the container),
//! * drop everything else arriving on the bridge (IPv4, and IPv6 too where the host has it: the bridge and the
//!   containers get link-local addresses, and a host service listening on `[::]` would answer them).
//!
//! Rules are inserted at the top of INPUT (`-I`), the drop first, so the accepts always sit above it and the
//! network is closed from the first rule on. They are removed by their tag, which is also how `azrw gc` finds those
//! of dead runs. `iptables` is run as a program (`-w`: wait for the xtables lock; the nft backend ignores it).

use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

/// Prefix of every rule comment azrw writes: `azrw:<run>:<case>`.
pub const TAG_PREFIX: &str = "azrw:";

/// Environment variable that runs Docker cases without these rules (with a warning in the verdict).
pub const NO_FIREWALL_ENV: &str = "AZRW_DOCKER_NO_FIREWALL";

/// iptables comments are limited to 256 bytes.
const MAX_COMMENT: usize = 255;

/// Whether `AZRW_DOCKER_NO_FIREWALL=1` is set.
pub fn disabled_by_env() -> bool {
    std::env::var(NO_FIREWALL_ENV).as_deref() == Ok("1")
}

/// The tag of a case's rules.
pub fn tag(run: &str, case: &str) -> String {
    format!("{TAG_PREFIX}{run}:{case}").chars().take(MAX_COMMENT).collect()
}

/// The run named in a tag (`azrw:<run>:<case>` → `<run>`).
pub fn tag_run(tag: &str) -> Option<&str> {
    tag.strip_prefix(TAG_PREFIX)?.split(':').next()
}

/// The rules of one case network.
#[derive(Debug, Clone)]
pub struct CaseFirewall {
    bridge: String,
    gateway: IpAddr,
    tag: String,
}

impl CaseFirewall {
    /// Closes `bridge` to everything but established traffic; ports are opened with [`CaseFirewall::allow_port`].
    /// Fails if iptables is missing or refuses (never leaves the network open without saying so).
    pub fn install(bridge: &str, gateway: IpAddr, tag: String) -> io::Result<CaseFirewall> {
        if !Path::new("/sys/class/net").join(bridge).exists() {
            // The name was worked out from Docker's naming; if it is wrong, the rules would match nothing.
            return Err(io::Error::other(format!("bridge interface {bridge} not found")));
        }
        let firewall = CaseFirewall { bridge: bridge.to_owned(), gateway, tag };
        firewall.insert(Family::V4, &["-j", "DROP"])?;
        firewall.insert(Family::V4, &["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"])?;
        if ipv6_enabled() {
            firewall.insert(Family::V6, &["-j", "DROP"])?;
        }
        Ok(firewall)
    }

    /// Accepts TCP from the bridge to the gateway on `port` (a mock listener's).
    pub fn allow_port(&self, port: u16) -> io::Result<()> {
        let destination = format!("{}/32", self.gateway);
        let port = port.to_string();
        self.insert(Family::V4, &["-d", &destination, "-p", "tcp", "--dport", &port, "-j", "ACCEPT"])
    }

    /// The rules' tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Removes every rule carrying this tag. Idempotent.
    pub fn remove(&self) -> io::Result<usize> {
        remove_where(|tag| tag == self.tag)
    }

    fn insert(&self, family: Family, rule: &[&str]) -> io::Result<()> {
        let mut args = vec!["-I", "INPUT", "-i", &self.bridge];
        args.extend_from_slice(rule);
        args.extend_from_slice(&["-m", "comment", "--comment", &self.tag]);
        run(family, &args)
    }
}

/// The tags of azrw's rules in INPUT (IPv4 and IPv6), one per rule. Nothing if iptables is not installed: then
/// azrw cannot have added any.
pub fn list_tags() -> io::Result<Vec<String>> {
    let mut tags = Vec::new();
    for family in families() {
        match rules(family) {
            Ok(rules) => tags.extend(rules.into_iter().map(|(tag, _)| tag)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(tags)
}

/// Removes azrw's rules whose tag satisfies `stale`; returns how many.
pub fn remove_where(stale: impl Fn(&str) -> bool) -> io::Result<usize> {
    let mut removed = 0;
    for family in families() {
        let rules = match rules(family) {
            Ok(rules) => rules,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for (_, spec) in rules.into_iter().filter(|(tag, _)| stale(tag)) {
            let mut args: Vec<&str> = vec!["-D"];
            args.extend(spec.iter().skip(1).map(String::as_str));
            match run(family, &args) {
                Ok(()) => removed += 1,
                // Someone else (a concurrent gc, the case itself) removed it first.
                Err(e) if e.to_string().contains("does a matching rule exist") => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

#[derive(Debug, Clone, Copy)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn program(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }
}

fn families() -> Vec<Family> {
    if ipv6_enabled() { vec![Family::V4, Family::V6] } else { vec![Family::V4] }
}

fn ipv6_enabled() -> bool {
    Path::new("/proc/sys/net/ipv6").exists()
}

/// azrw's rules in INPUT as `(tag, arguments of -S after "-A")`, e.g. `["INPUT", "-i", "br-…", …]`.
fn rules(family: Family) -> io::Result<Vec<(String, Vec<String>)>> {
    let listing = output(family, &["-S", "INPUT"])?;
    Ok(listing.lines().filter_map(parse_rule).collect())
}

/// One `-S` line → its tag and arguments, if it is azrw's. Our comments contain no spaces, so splitting on
/// whitespace and dropping the quotes `-S` puts around comments gives back arguments `-D` accepts.
fn parse_rule(line: &str) -> Option<(String, Vec<String>)> {
    let args: Vec<String> = line.split_whitespace().map(|a| a.trim_matches('"').to_owned()).collect();
    if args.first().map(String::as_str) != Some("-A") {
        return None;
    }
    let comment = args.iter().position(|a| a == "--comment").and_then(|i| args.get(i + 1))?.clone();
    comment.starts_with(TAG_PREFIX).then_some((comment, args))
}

fn run(family: Family, args: &[&str]) -> io::Result<()> {
    output(family, args).map(drop)
}

fn output(family: Family, args: &[&str]) -> io::Result<String> {
    let program = family.program();
    let out = Command::new(program).arg("-w").args(args).output().map_err(|e| {
        io::Error::new(e.kind(), format!("{program}: {e} (azrw needs it, and root, to isolate agent containers)"))
    })?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_azrw_rules_and_their_tags() {
        let line = r#"-A INPUT -i br-0123456789ab -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "azrw:run1:auth_x" -j ACCEPT"#;
        let (found, args) = parse_rule(line).expect("azrw rule");
        assert_eq!(found, "azrw:run1:auth_x");
        assert_eq!(args[1], "INPUT");
        assert!(args.contains(&"azrw:run1:auth_x".to_owned()));
        assert!(parse_rule("-A INPUT -i eth0 -m comment --comment \"someone else\" -j ACCEPT").is_none());
        assert!(parse_rule("-P INPUT ACCEPT").is_none());
        assert_eq!(tag_run("azrw:run1:auth_x"), Some("run1"));
        assert_eq!(tag("r", &"c".repeat(400)).len(), MAX_COMMENT);
    }
}
