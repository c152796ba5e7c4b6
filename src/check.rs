//! Check identities: every check azrw runs, by one typed name. Findings, a scenario's `expect.failing`, the
//! known-vulnerability table and the reports all name checks through [`Check`], so a misspelt name in a file is
//! rejected with the valid names and a stale one in code does not compile.
//!
//! ```
//! use azrw::Check;
//! assert_eq!(Check::WriteBearer.to_string(), "write.bearer");
//! assert_eq!("write.bearer".parse::<Check>(), Ok(Check::WriteBearer));
//! assert!("write.bearr".parse::<Check>().unwrap_err().to_string().contains("write.bearer"));
//! ```

use std::fmt;
use std::str::FromStr;

macro_rules! checks {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// One check, named as findings, scenarios and reports spell it (`write.bearer`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Check {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Check {
            /// Every check, in report order.
            pub const ALL: &'static [Check] = &[$(Check::$variant,)*];

            /// Its stable name, e.g. `write.bearer`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Check::$variant => $name,)*
                }
            }
        }
    };
}

checks! {
    /// The outcome matches what the capability table says this version can do.
    CapabilityTable => "capability.table",
    /// The case reached an outcome before its deadline.
    Outcome => "outcome",
    /// Tokens are requested from the endpoint the auth type uses.
    AuthEndpoint => "auth.endpoint",
    /// The token request carries what Azure requires (headers, form fields, scope, assertion).
    AuthRequest => "auth.request",
    /// A token is reused until it nears expiry rather than fetched per write.
    AuthTokenReused => "auth.token-reused",
    /// Every write carries a valid, unexpired bearer token the mock issued for the DCR's audience.
    WriteBearer => "write.bearer",
    /// `Content-Encoding: snappy`.
    WriteContentEncoding => "write.content-encoding",
    /// The remote-write content type.
    WriteContentType => "write.content-type",
    /// `X-Prometheus-Remote-Write-Version`.
    WriteVersionHeader => "write.version-header",
    /// A `User-Agent` naming the agent.
    WriteUserAgent => "write.user-agent",
    /// The body decodes as the remote-write version the headers claim.
    WriteBody => "write.body",
    /// No request is larger than the service accepts (1 MiB for a remote-write body, as sent and uncompressed; 64
    /// KiB for a token request): the mock answers 413 and says which request, its size and the cap.
    WriteSize => "write.size",
    /// A write refused with a non-recoverable status is not sent again.
    WriteRefusedNotResent => "write.refused-not-resent",
    /// A write refused with a recoverable status is sent again.
    RetryRecoverableResent => "retry.recoverable-resent",
    /// The agent drops what the rules say it drops, and nothing more.
    RetryDropped => "retry.dropped",
    /// A resend waits at least the `Retry-After` the DCR asked for (where the version honours it).
    RetryRetryAfter => "retry.retry-after",
    /// Resends back off within `queue_config`'s bounds.
    RetryBackoff => "retry.backoff",
    /// `Retry-Attempt` headers count resends (remote-write 2.0).
    RetryAttemptHeader => "retry.attempt-header",
    /// Every refused sample is delivered once the fault ends.
    RetryNoLoss => "retry.no-loss",
    /// No write carries an expired token.
    TokensNotExpired => "tokens.not-expired",
    /// Tokens are refreshed before they expire.
    TokensRefresh => "tokens.refresh",
    /// A revoked token is replaced by a new one.
    TokensRevokedReplaced => "tokens.revoked-replaced",
    /// A throttled token request is retried no sooner than its `Retry-After`.
    TokensRetryAfter => "tokens.retry-after",
    /// The agent's own `/metrics` agree with what the mock saw.
    AgentMetrics => "agent.metrics",
    /// The sidecar stays up.
    SidecarRunning => "sidecar.running",
    /// The expected series arrive.
    SeriesPresent => "series.present",
    /// The verdict's explanation names the cause the scenario expects.
    VerdictReason => "verdict.reason",
    /// Sustained load: writes keep arriving.
    LoadSustained => "load.sustained",
    /// Sustained load: samples arrive at the rate produced.
    LoadRate => "load.rate",
    /// Sustained load: every sample produced arrives.
    LoadComplete => "load.complete",
    /// Sustained load: nothing is lost across faults.
    LoadNoLoss => "load.no-loss",
    /// Sustained load: no sample arrives twice.
    LoadNoDuplicates => "load.no-duplicates",
    /// Sustained load: the agent's own resource use stays bounded.
    LoadAgent => "load.agent",
    /// The agent's config endpoints show none of the case's secrets.
    SecurityConfigRedaction => "security.config-redaction",
    /// The agent's (and sidecar's) logs contain no secret and no issued token.
    SecurityLogSecrets => "security.log-secrets",
    /// The bearer token goes only to the DCR host of the remote_write that authenticates: no plain remote_write
    /// host and no scrape of the target carries it.
    SecurityTokenScope => "security.token-scope",
    /// A redirect from the DCR to another host is not followed with the bearer token.
    SecurityRedirect => "security.redirect",
    /// Nothing is sent over a connection presenting a certificate the agent must refuse.
    SecurityTlsVerify => "security.tls-verify",
    /// The target serves a valid exposition.
    PayloadExposition => "payload.exposition",
    /// Every sample the target produced arrives.
    PayloadSamples => "payload.samples",
    /// No sample arrives twice.
    PayloadDuplicates => "payload.duplicates",
    /// Values arrive bit-exact.
    PayloadValues => "payload.values",
    /// Timestamps are the scrapes'.
    PayloadTimestamps => "payload.timestamps",
    /// Samples of a series arrive in order.
    PayloadOrder => "payload.order",
    /// Labels are the exposition's.
    PayloadLabels => "payload.labels",
    /// `job`, `instance` and relabelled target labels are as configured.
    PayloadTargetLabels => "payload.target-labels",
    /// Metadata (type, help, unit) arrives.
    PayloadMetadata => "payload.metadata",
    /// Exemplars arrive.
    PayloadExemplars => "payload.exemplars",
    /// Nothing exceeds Azure's documented limits.
    PayloadAzureLimits => "payload.azure-limits",
}

impl Check {
    /// Its family, the part before the dot (`write`, `retry`, `payload`…).
    pub fn family(self) -> &'static str {
        self.name().split_once('.').map_or(self.name(), |(family, _)| family)
    }

    /// Every check of one family, in report order.
    pub fn of_family(family: &str) -> impl Iterator<Item = Check> + '_ {
        Check::ALL.iter().copied().filter(move |c| c.family() == family)
    }

    /// Every name, comma-separated, for error messages.
    pub fn names() -> String {
        Check::ALL.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a check; checks are: {names}", names = Check::names())]
pub struct UnknownCheck(pub String);

impl FromStr for Check {
    type Err = UnknownCheck;

    fn from_str(s: &str) -> Result<Check, UnknownCheck> {
        Check::ALL.iter().copied().find(|c| c.name() == s).ok_or_else(|| UnknownCheck(s.to_owned()))
    }
}

impl serde::Serialize for Check {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Check {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Check, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &c in Check::ALL {
            assert!(seen.insert(c.name()), "duplicate name {c}");
            assert_eq!(c.name().parse::<Check>(), Ok(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
        }
    }

    #[test]
    fn an_unknown_name_lists_the_valid_ones() {
        let err = "write.bearr".parse::<Check>().unwrap_err().to_string();
        assert!(err.starts_with("`write.bearr` is not a check; checks are: capability.table, "), "{err}");
    }

    #[test]
    fn families_group_the_checks() {
        assert_eq!(Check::RetryBackoff.family(), "retry");
        assert_eq!(Check::of_family("security").count(), 5);
    }
}
